-- Issue-group history (issue 16): one row per change of a group's state, severity or
-- repository, written in the same transaction as the group (`store::history`). `state` is
-- pending, open, acknowledged, closed or suppressed (closed under an approved exception).
-- `at` is the instant of the change set that made it. The report and the dashboard answer
-- "how many issues were open at instant T" and the times to acknowledge and to fix from it.
CREATE TABLE group_history (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_key   TEXT COLLATE "C" NOT NULL,
    repo        TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    severity    TEXT NOT NULL,
    state       TEXT NOT NULL
        CHECK (state IN ('pending', 'open', 'acknowledged', 'closed', 'suppressed')),
    at          TIMESTAMPTZ NOT NULL
);

CREATE INDEX group_history_group ON group_history (group_key, seq);
CREATE INDEX group_history_at ON group_history (at);

-- Backfill from the groups that exist: the group as created (pending, or open once it has an
-- issue), its acknowledgement (the lifecycle's `acknowledged.at`), and its close (at its last
-- update: the best instant the store knows).
INSERT INTO group_history (group_key, repo, account_id, environment, severity, state, at)
SELECT group_key, repo,
       COALESCE(data->>'account_id', ''),
       COALESCE(data->>'environment', ''),
       COALESCE(data->>'severity', 'INFORMATIONAL'),
       CASE WHEN status = 'pending' THEN 'pending' ELSE 'open' END,
       created_at
FROM groups ORDER BY created_at, group_key;

INSERT INTO group_history (group_key, repo, account_id, environment, severity, state, at)
SELECT group_key, repo,
       COALESCE(data->>'account_id', ''),
       COALESCE(data->>'environment', ''),
       COALESCE(data->>'severity', 'INFORMATIONAL'),
       'acknowledged',
       GREATEST(created_at, (data->'lifecycle'->'acknowledged'->>'at')::timestamptz)
FROM groups
WHERE status = 'open' AND data->'lifecycle'->'acknowledged'->>'at' IS NOT NULL
ORDER BY created_at, group_key;

INSERT INTO group_history (group_key, repo, account_id, environment, severity, state, at)
SELECT group_key, repo,
       COALESCE(data->>'account_id', ''),
       COALESCE(data->>'environment', ''),
       COALESCE(data->>'severity', 'INFORMATIONAL'),
       CASE WHEN data->'lifecycle'->>'closure' = 'exception' THEN 'suppressed' ELSE 'closed' END,
       updated_at
FROM groups WHERE status = 'closed' ORDER BY updated_at, group_key;
