-- Lever durable store, SQLite flavour.
--
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC), the same precision as
-- PostgreSQL's TIMESTAMPTZ, so they compare and sort correctly in SQL and round-trip the same
-- way on both backends. They always come from the caller; the database clock is never used.
-- JSON columns are TEXT holding serde_json output. Tables are STRICT so a column can only hold
-- its declared type.

CREATE TABLE findings (
    product_arn     TEXT NOT NULL,
    finding_id      TEXT NOT NULL,
    stable_key      TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    severity        TEXT NOT NULL,
    compliance      TEXT,
    record_state    TEXT NOT NULL,
    workflow        TEXT NOT NULL,
    asff_updated_at TEXT,
    fingerprint     TEXT NOT NULL,
    data            TEXT NOT NULL,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    PRIMARY KEY (product_arn, finding_id)
) STRICT;

CREATE INDEX findings_stable_key ON findings (stable_key);
CREATE INDEX findings_group_key ON findings (group_key);

CREATE TABLE groups (
    group_key    TEXT PRIMARY KEY NOT NULL,
    repo         TEXT NOT NULL,
    issue_number INTEGER,
    issue_url    TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'open', 'closed')),
    assignee     TEXT,
    data         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL
) STRICT;

CREATE INDEX groups_issue ON groups (lower(repo), issue_number) WHERE issue_number IS NOT NULL;
CREATE INDEX groups_status ON groups (status, group_key);

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    run_at        INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_expires INTEGER,
    last_error    TEXT,
    -- Set when the job is enqueued again while it runs: finishing it then re-runs it.
    rerun         INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- At most one pending job per (kind, subject); enqueue upserts against this index.
CREATE UNIQUE INDEX jobs_pending_kind_subject ON jobs (kind, subject) WHERE state = 'pending';
-- The lease query: due pending jobs by run_at, then id.
CREATE INDEX jobs_pending_due ON jobs (run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_state ON jobs (state, created_at, id);

CREATE TABLE deliveries (
    id          TEXT PRIMARY KEY NOT NULL,
    event       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;

CREATE INDEX deliveries_received_at ON deliveries (received_at);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    group_key TEXT,
    issue     TEXT,
    source    TEXT,
    detail    TEXT NOT NULL
) STRICT;

CREATE INDEX audit_group_key ON audit (group_key, seq);
CREATE INDEX audit_issue ON audit (lower(issue), seq);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE kv (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
