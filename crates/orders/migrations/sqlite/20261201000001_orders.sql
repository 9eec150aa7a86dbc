-- An order is inserted PLACED before its stock is reserved. total_cents and currency stay
-- NULL until the reservation priced it; until then it is shown to no one.
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    total_cents BIGINT,
    currency TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX orders_by_user ON orders (user_id, created_at);

-- product_name, category and unit_price_cents are the catalog's at reservation time.
CREATE TABLE order_lines (
    order_id TEXT NOT NULL REFERENCES orders (id),
    line_no BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    product_name TEXT,
    category TEXT,
    unit_price_cents BIGINT,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT order_lines_product_key UNIQUE (order_id, product_id)
);
