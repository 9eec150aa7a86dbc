-- The catalog replica, from product.* events. A stock event about a product not yet
-- created leaves a row without name and category, which the recommender skips.
CREATE TABLE products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    stock BIGINT NOT NULL,
    -- The time (unix µs) of the event the stock level comes from: an older event
    -- redelivered late does not undo a newer one.
    stock_at BIGINT NOT NULL
);

CREATE INDEX products_by_category ON products (category, stock);

-- Each user's preferred categories (a JSON array), from user.* events; the highest
-- preferences version wins.
CREATE TABLE preferred_categories (
    user_id TEXT PRIMARY KEY,
    categories TEXT NOT NULL,
    version BIGINT NOT NULL
);

-- One row per order heard of. A CANCELLED row without purchases records a cancellation
-- that came before the confirmation, so the late confirmation adds nothing.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('CONFIRMED', 'CANCELLED')),
    placed_at BIGINT NOT NULL
);

-- The lines of confirmed orders: each user's purchases, and what is bought together.
CREATE TABLE purchases (
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    product_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    purchased_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE INDEX purchases_by_product ON purchases (product_id, purchased_at);
CREATE INDEX purchases_by_user ON purchases (user_id, purchased_at);
CREATE INDEX purchases_by_time ON purchases (purchased_at);

-- Activity signals, the newest 500 per user (trimmed on insert).
CREATE TABLE signals (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('VIEW', 'CART', 'WISHLIST', 'SEARCH')),
    product_id TEXT,
    category TEXT,
    query TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX signals_by_user ON signals (user_id, created_at);
