-- The noise cap (issue 10): which issues each product (the repository they open in) opened in
-- the last hour, and which are held back until the hour has room. One row per product and
-- group: `opened` rows count against the cap for an hour after `at`; `held` rows wait, `at`
-- being when the group was first held.
CREATE TABLE noise_ledger (
    product   TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('opened', 'held')),
    at        INTEGER NOT NULL,
    PRIMARY KEY (product, group_key)
) STRICT;
CREATE INDEX noise_ledger_by_state ON noise_ledger (product, state, at);
