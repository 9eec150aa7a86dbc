-- Admins' campaigns. A fan-out claims a due promotion (SCHEDULED, or SENDING whose lease
-- ran out: its sender died), walks the opted-in recipients in user-id order from `cursor`
-- in batches, and records each batch's progress in the batch's transaction.
CREATE TABLE promotions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category TEXT,
    send_at BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('SCHEDULED', 'SENDING', 'SENT', 'CANCELLED')),
    recipients BIGINT NOT NULL,
    -- The last user id the fan-out reached.
    cursor TEXT,
    lease_until BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX promotions_due ON promotions (status, send_at);
CREATE INDEX promotions_newest ON promotions (created_at);
