-- A notification is stored only by the transaction that records its decision, and
-- `notification_decisions` (there from the first migration) has one row per dedupe key:
-- that primary key is the one guard against a second notification. The unique index on
-- `notifications.dedupe_key` guarded the same a second time and cost every insert a
-- speculative insertion and an index; nothing looks notifications up by their key.
ALTER TABLE notifications DROP CONSTRAINT notifications_dedupe_key_key;
