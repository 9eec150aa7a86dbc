-- A notification is stored only by the transaction that records its decision, and
-- `notification_decisions` (there from the first migration) has one row per dedupe key:
-- that primary key is the one guard against a second notification. The unique index on
-- `notifications.dedupe_key` guarded the same a second time and cost every insert an
-- index; nothing looks notifications up by their key. SQLite cannot drop a table's
-- constraint: the table is rebuilt, and the view over it recreated.
DROP VIEW deliveries;

CREATE TABLE notifications_rebuilt (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    priority TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT,
    dedupe_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    deliver_at BIGINT NOT NULL DEFAULT 0
);

INSERT INTO notifications_rebuilt
    (id, user_id, type, priority, title, body, data, dedupe_key, created_at, read_at, deliver_at)
SELECT id, user_id, type, priority, title, body, data, dedupe_key, created_at, read_at, deliver_at
FROM notifications;

DROP TABLE notifications;
ALTER TABLE notifications_rebuilt RENAME TO notifications;

CREATE INDEX notifications_by_user ON notifications (user_id, deliver_at, id);
CREATE INDEX notifications_unread_by_user ON notifications (user_id, deliver_at, id)
    WHERE read_at IS NULL;

CREATE VIEW deliveries AS
    SELECT dedupe_key, user_id, type, 'IN_APP' AS channel, 'SENT' AS status,
           CAST(NULL AS TEXT) AS reason, 1 AS attempts, CAST(NULL AS TEXT) AS error,
           deliver_at AS at
    FROM notifications
    UNION ALL
    SELECT dedupe_key, user_id, type, 'EMAIL', status, reason, attempts, last_error,
           COALESCE(sent_at, due_at)
    FROM email_deliveries
    UNION ALL
    SELECT dedupe_key, user_id, type, NULL, 'SUPPRESSED', reason, 0, NULL, decided_at
    FROM notification_decisions WHERE outcome = 'SUPPRESSED';
