-- The replica of each user's notification preferences, fed by user.* events.
-- Flags are INTEGER 0/1: sqlx's Any driver cannot read SQLite columns declared BOOLEAN.
CREATE TABLE recipients (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    promotions INTEGER NOT NULL CHECK (promotions IN (0, 1)),
    order_updates INTEGER NOT NULL CHECK (order_updates IN (0, 1)),
    recommendations INTEGER NOT NULL CHECK (recommendations IN (0, 1)),
    inventory_alerts INTEGER NOT NULL CHECK (inventory_alerts IN (0, 1)),
    categories TEXT NOT NULL,
    channels TEXT NOT NULL,
    timezone TEXT NOT NULL,
    quiet_hours_start TEXT,
    quiet_hours_end TEXT,
    preferences_version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE notifications (
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
    CONSTRAINT notifications_dedupe_key_key UNIQUE (dedupe_key)
);

CREATE INDEX notifications_by_user ON notifications (user_id, id);
CREATE INDEX notifications_unread_by_user ON notifications (user_id, id) WHERE read_at IS NULL;

-- Every decision, delivered or not; one per dedupe key.
CREATE TABLE notification_decisions (
    dedupe_key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    channels TEXT NOT NULL,
    decided_at BIGINT NOT NULL
);

CREATE INDEX notification_decisions_by_user ON notification_decisions (user_id, decided_at);
