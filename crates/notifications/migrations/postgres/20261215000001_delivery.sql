-- Deferred delivery, the email channel and the record of every delivery attempt.

-- A notification is visible from deliver_at on (its creation, or the end of the
-- recipient's quiet hours); lists are ordered by it.
ALTER TABLE notifications ADD COLUMN deliver_at BIGINT;
UPDATE notifications SET deliver_at = created_at;
ALTER TABLE notifications ALTER COLUMN deliver_at SET NOT NULL;
DROP INDEX notifications_by_user;
DROP INDEX notifications_unread_by_user;
CREATE INDEX notifications_by_user ON notifications (user_id, deliver_at, id);
CREATE INDEX notifications_unread_by_user ON notifications (user_id, deliver_at, id)
    WHERE read_at IS NULL;

-- When a DEFERRED notification is delivered.
ALTER TABLE notification_decisions ADD COLUMN deliver_at BIGINT;

-- The email outbox: one row per notification emailed, claimed by the email worker when
-- due. Recipient and content are kept as decided, so a send needs no other table.
CREATE TABLE email_deliveries (
    id TEXT PRIMARY KEY,
    dedupe_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    to_name TEXT NOT NULL,
    to_address TEXT NOT NULL,
    type TEXT NOT NULL,
    -- 0 CRITICAL, 1 STANDARD: critical mail is sent first.
    priority_rank INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT,
    -- QUEUED, SENT, FAILED (after the last attempt), or SUPPRESSED when the recipient
    -- switched it off before it went out.
    status TEXT NOT NULL,
    reason TEXT,
    attempts BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    -- A worker sending the row holds it until then.
    leased_until BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    CONSTRAINT email_deliveries_dedupe_key_key UNIQUE (dedupe_key)
);

CREATE INDEX email_deliveries_due ON email_deliveries (priority_rank, due_at)
    WHERE status = 'QUEUED';
CREATE INDEX email_deliveries_by_user ON email_deliveries (user_id, created_at);

-- Every attempt to send on a channel that can fail (email), with its outcome: SENT,
-- FAILED with the error, or SUPPRESSED with the reason.
CREATE TABLE delivery_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    error TEXT,
    attempted_at BIGINT NOT NULL
);

CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempted_at);

-- Keys this service generates once and keeps (the unsubscribe link key).
CREATE TABLE notification_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- What became of each notification on each channel, for operators: in-app ones are SENT
-- (visible from `at`), emails carry their own status, suppressed ones say why.
CREATE VIEW deliveries AS
    SELECT dedupe_key, user_id, type, 'IN_APP' AS channel, 'SENT' AS status,
           CAST(NULL AS TEXT) AS reason, CAST(1 AS BIGINT) AS attempts, CAST(NULL AS TEXT) AS error,
           deliver_at AS at
    FROM notifications
    UNION ALL
    SELECT dedupe_key, user_id, type, 'EMAIL', status, reason, attempts, last_error,
           COALESCE(sent_at, due_at)
    FROM email_deliveries
    UNION ALL
    SELECT dedupe_key, user_id, type, NULL, 'SUPPRESSED', reason, CAST(0 AS BIGINT), NULL, decided_at
    FROM notification_decisions WHERE outcome = 'SUPPRESSED';
