-- The keys every notification and decision is indexed by (ids, user ids, dedupe keys) are
-- ASCII identifiers: they are compared byte by byte ("C") instead of through the
-- database's locale, which copies both strings and calls strcoll for every comparison in
-- the indexes a campaign writes a million entries into. Only the order of these keys
-- changes, and nothing depends on it but keyset paging, which reads it back the same way.
-- The view reads the columns, so it is dropped and created again around the change.
DROP VIEW deliveries;
ALTER TABLE notifications
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE notification_decisions
    ALTER COLUMN dedupe_key TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
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
