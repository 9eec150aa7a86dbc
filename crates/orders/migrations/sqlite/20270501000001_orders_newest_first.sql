-- Admins list every buyer's orders newest first (`orders`), all of them or those in one
-- status: each index gives them in that order, so a page reads only its own rows.
CREATE INDEX orders_newest_first ON orders (created_at, id);
CREATE INDEX orders_by_status_newest_first ON orders (status, created_at, id);
