-- The last recommendation digest of each user: when, and which products it named.
CREATE TABLE digests (
    user_id TEXT PRIMARY KEY,
    sent_at BIGINT NOT NULL,
    picks TEXT NOT NULL
);
