-- Ids are UUIDv7: in byte order they are in creation order, which pages follow.
CREATE TABLE products (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency TEXT NOT NULL,
    stock BIGINT NOT NULL CONSTRAINT products_stock_not_negative CHECK (stock >= 0),
    -- Lowercased in the service, so search folds case alike on both engines.
    name_folded TEXT NOT NULL,
    description_folded TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX products_by_category ON products (category, id);

-- Who hears of a product's return to stock and its price drops.
CREATE TABLE product_watches (
    product_id TEXT COLLATE "C" NOT NULL REFERENCES products (id),
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, user_id)
);

CREATE INDEX product_watches_by_user ON product_watches (user_id);

-- One per order id, the idempotency key of reserving and releasing. A RELEASED row
-- without lines records a release that came before any reservation.
CREATE TABLE reservations (
    order_id TEXT PRIMARY KEY,
    user_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('RESERVED', 'RELEASED')),
    created_at BIGINT NOT NULL,
    released_at BIGINT
);

CREATE TABLE reservation_lines (
    order_id TEXT NOT NULL REFERENCES reservations (order_id),
    product_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
