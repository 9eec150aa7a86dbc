-- SQLite: flags are INTEGER 0/1 (sqlx Any cannot decode SQLite BOOLEAN).
-- The calendar: one row per configured job. `next_run_at` moves forward in the same
-- statement that claims a run, so that of any number of replicas one claims each due time.
CREATE TABLE jobs (
    name TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    -- unix µs; NULL when switched off or never due again
    next_run_at BIGINT,
    last_run_id TEXT,
    last_run_at BIGINT,
    last_outcome TEXT
);

-- Every run, scheduled or manual; a due time is claimed once.
CREATE TABLE job_runs (
    id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    manual INTEGER NOT NULL,
    runner TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    ok INTEGER,
    outcome TEXT,
    UNIQUE (job, due_at)
);

CREATE INDEX job_runs_by_job ON job_runs (job, started_at);
