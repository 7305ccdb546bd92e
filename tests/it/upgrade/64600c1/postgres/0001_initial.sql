-- Lever durable store, PostgreSQL flavour.
--
-- Timestamps are TIMESTAMPTZ (microsecond precision) and always come from the caller; the
-- database clock is never used. JSON columns are JSONB. Key columns use the "C" collation so
-- ORDER BY matches SQLite and Rust (byte order), whatever the database's default collation.
-- Tables are created unqualified, in the first schema of the connection's search_path.

CREATE TABLE findings (
    product_arn     TEXT COLLATE "C" NOT NULL,
    finding_id      TEXT COLLATE "C" NOT NULL,
    stable_key      TEXT COLLATE "C" NOT NULL,
    group_key       TEXT COLLATE "C" NOT NULL,
    account_id      TEXT NOT NULL,
    severity        TEXT NOT NULL,
    compliance      TEXT,
    record_state    TEXT NOT NULL,
    workflow        TEXT NOT NULL,
    asff_updated_at TEXT,
    fingerprint     TEXT NOT NULL,
    data            JSONB NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (product_arn, finding_id)
);

CREATE INDEX findings_stable_key ON findings (stable_key);
CREATE INDEX findings_group_key ON findings (group_key);

CREATE TABLE groups (
    group_key    TEXT COLLATE "C" PRIMARY KEY,
    repo         TEXT NOT NULL,
    issue_number BIGINT,
    issue_url    TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'open', 'closed')),
    assignee     TEXT,
    data         JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    version      BIGINT NOT NULL
);

CREATE INDEX groups_issue ON groups (lower(repo), issue_number) WHERE issue_number IS NOT NULL;
CREATE INDEX groups_status ON groups (status, group_key);

CREATE TABLE jobs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT COLLATE "C" NOT NULL,
    subject       TEXT COLLATE "C" NOT NULL,
    payload       JSONB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    run_at        TIMESTAMPTZ NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_expires TIMESTAMPTZ,
    last_error    TEXT,
    -- Set when the job is enqueued again while it runs: finishing it then re-runs it.
    rerun         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- At most one pending job per (kind, subject); enqueue upserts against this index.
CREATE UNIQUE INDEX jobs_pending_kind_subject ON jobs (kind, subject) WHERE state = 'pending';
-- The lease query: due pending jobs by run_at, then id.
CREATE INDEX jobs_pending_due ON jobs (run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_state ON jobs (state, created_at, id);

CREATE TABLE deliveries (
    id          TEXT COLLATE "C" PRIMARY KEY,
    event       TEXT NOT NULL,
    payload     JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX deliveries_received_at ON deliveries (received_at);

CREATE TABLE audit (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    group_key TEXT COLLATE "C",
    issue     TEXT,
    source    TEXT,
    detail    JSONB NOT NULL
);

CREATE INDEX audit_group_key ON audit (group_key, seq);
CREATE INDEX audit_issue ON audit (lower(issue), seq);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE kv (
    key        TEXT COLLATE "C" PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
