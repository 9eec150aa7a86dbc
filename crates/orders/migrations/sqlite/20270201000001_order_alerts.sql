-- What the order checks reported: each order once per kind and status.
CREATE TABLE order_alerts (
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('STUCK', 'DELIVERY_LATE')),
    status TEXT NOT NULL,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, kind, status)
);

CREATE INDEX orders_by_status ON orders (status, updated_at);
