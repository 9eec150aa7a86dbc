-- The replica of who watches which product, fed by product.watched; keyed for the
-- fan-out to one product's watchers.
CREATE TABLE watches (
    product_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    watched_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, user_id)
);

-- Stock alerts go to every admin.
CREATE INDEX recipients_by_role ON recipients (role, user_id);
