-- Typed jobs and a table for the outbox (issue 7).
--
-- * Jobs are typed by (kind, subject): the payload column was always '{}' and goes.
-- * Each group's pending effects move from the `outbox` array inside `groups.data` to rows of
--   their own, in their order, so performing one effect never rewrites the group.

CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    effect_id  TEXT NOT NULL UNIQUE,
    group_key  TEXT NOT NULL,
    action     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX outbox_group ON outbox (group_key, seq);

INSERT INTO outbox (effect_id, group_key, action, source, created_at)
SELECT json_extract(e.value, '$.id'),
       g.group_key,
       json_extract(e.value, '$.action'),
       COALESCE(json_extract(e.value, '$.source'), 'migration'),
       g.updated_at
FROM groups AS g, json_each(g.data, '$.outbox') AS e
WHERE json_type(g.data, '$.outbox') = 'array'
ORDER BY g.group_key, e.key;

UPDATE groups SET data = json_remove(data, '$.outbox')
WHERE json_type(data, '$.outbox') IS NOT NULL;

ALTER TABLE jobs DROP COLUMN payload;
