-- Typed jobs and a table for the outbox (issue 7).
--
-- * Jobs are typed by (kind, subject): the payload column was always '{}' and goes.
-- * Each group's pending effects move from the `outbox` array inside `groups.data` to rows of
--   their own, in their order, so performing one effect never rewrites the group.

CREATE TABLE outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    effect_id  TEXT COLLATE "C" NOT NULL UNIQUE,
    group_key  TEXT COLLATE "C" NOT NULL,
    action     JSONB NOT NULL,
    source     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX outbox_group ON outbox (group_key, seq);

INSERT INTO outbox (effect_id, group_key, action, source, created_at)
SELECT e.value ->> 'id',
       g.group_key,
       e.value -> 'action',
       COALESCE(e.value ->> 'source', 'migration'),
       g.updated_at
FROM groups AS g
CROSS JOIN LATERAL jsonb_array_elements(g.data -> 'outbox') WITH ORDINALITY AS e(value, n)
WHERE jsonb_typeof(g.data -> 'outbox') = 'array'
ORDER BY g.group_key, e.n;

UPDATE groups SET data = data - 'outbox' WHERE data ? 'outbox';

-- A worker of the previous version may be running a group's `apply-effects` right now (a
-- rolling deploy). It would find no outbox in `groups.data` any more and finish the job as
-- done, leaving the moved effects without a job. So its lease is taken away: its finish then
-- matches no job and changes nothing, and once the lease ends this version leases the job
-- again as a retry (attempts > 1), which finds an effect the old worker already performed
-- (a comment carries its effect id) instead of repeating it.
UPDATE jobs SET lease_owner = 'migration-0002'
WHERE kind = 'apply-effects' AND state = 'pending' AND lease_owner IS NOT NULL
  AND subject IN (SELECT group_key FROM outbox);

ALTER TABLE jobs DROP COLUMN payload;
