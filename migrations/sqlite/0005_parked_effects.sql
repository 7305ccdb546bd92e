-- An effect that cannot be performed is parked on its own (issue 10): it keeps its row with
-- the reason, the effects after it still run, and `lever jobs retry` hands it back.
ALTER TABLE outbox ADD COLUMN parked_error TEXT;
