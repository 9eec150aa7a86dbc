-- Password reset links, kept as the SHA-256 of their token: each is good once, for an
-- hour, and only the newest of a user's (a new request deletes the unused older ones).
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);
