-- Issue-group history (issue 16): one row per change of a group's state, severity or
-- repository, written in the same transaction as the group (`store::history`). `state` is
-- pending, open, acknowledged, closed or suppressed (closed under an approved exception).
-- `at` is the instant of the change set that made it. The report and the dashboard answer
-- "how many issues were open at instant T" and the times to acknowledge and to fix from it.
CREATE TABLE group_history (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key   TEXT NOT NULL,
    repo        TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    environment TEXT NOT NULL,
    severity    TEXT NOT NULL,
    state       TEXT NOT NULL
        CHECK (state IN ('pending', 'open', 'acknowledged', 'closed', 'suppressed')),
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX group_history_group ON group_history (group_key, seq);
CREATE INDEX group_history_at ON group_history (at);

-- Backfill from the groups that exist: the group as created (pending, or open once it has an
-- issue), its acknowledgement (the lifecycle's `acknowledged.at`, to the second), and its
-- close (at its last update: the best instant the store knows).
INSERT INTO group_history (group_key, repo, account_id, environment, severity, state, at)
SELECT group_key, repo,
       COALESCE(json_extract(data, '$.account_id'), ''),
       COALESCE(json_extract(data, '$.environment'), ''),
       COALESCE(json_extract(data, '$.severity'), 'INFORMATIONAL'),
       CASE WHEN status = 'pending' THEN 'pending' ELSE 'open' END,
       created_at
FROM groups ORDER BY created_at, group_key;

INSERT INTO group_history (group_key, repo, account_id, environment, severity, state, at)
SELECT group_key, repo,
       COALESCE(json_extract(data, '$.account_id'), ''),
       COALESCE(json_extract(data, '$.environment'), ''),
       COALESCE(json_extract(data, '$.severity'), 'INFORMATIONAL'),
       'acknowledged',
       MAX(created_at, CAST(strftime('%s', json_extract(data, '$.lifecycle.acknowledged.at')) AS INTEGER) * 1000000)
FROM groups
WHERE status = 'open' AND json_extract(data, '$.lifecycle.acknowledged.at') IS NOT NULL
  AND strftime('%s', json_extract(data, '$.lifecycle.acknowledged.at')) IS NOT NULL
ORDER BY created_at, group_key;

INSERT INTO group_history (group_key, repo, account_id, environment, severity, state, at)
SELECT group_key, repo,
       COALESCE(json_extract(data, '$.account_id'), ''),
       COALESCE(json_extract(data, '$.environment'), ''),
       COALESCE(json_extract(data, '$.severity'), 'INFORMATIONAL'),
       CASE WHEN json_extract(data, '$.lifecycle.closure') = 'exception' THEN 'suppressed' ELSE 'closed' END,
       updated_at
FROM groups WHERE status = 'closed' ORDER BY updated_at, group_key;
