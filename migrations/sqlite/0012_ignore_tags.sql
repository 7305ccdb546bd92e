-- The tag audit (issue 12): the resources carrying the ignore tag as the last audit saw them,
-- one row per resource ARN. `reason` is the tag's value as written (untrusted; blank means no
-- reason). `first_seen`: when Lever first saw an ignore tag on the resource; `reason_since`:
-- when it first saw the current reason. When the last audit ran is the kv key
-- `tags.audited_at`.
CREATE TABLE ignore_tags (
    resource_arn TEXT NOT NULL PRIMARY KEY,
    account_id   TEXT NOT NULL,
    region       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    first_seen   INTEGER NOT NULL,
    reason_since INTEGER NOT NULL
) STRICT;
