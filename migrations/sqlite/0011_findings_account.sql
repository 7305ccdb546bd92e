-- The ramp-up backfill reads an account's findings that have no group (issue 12).
CREATE INDEX findings_account ON findings (account_id);
