-- Lean deliveries (issue 8).
--
-- A delivery keeps what deduplication needs (id, event, SHA-256 of the body, received_at);
-- only a delivery about an issue Lever tracks keeps its body, as received (bytes, never
-- re-serialized), for its `github-event` job. Until now every delivery kept its whole payload
-- as JSON, forever.
--
-- Rows of the previous schema: a delivery with a pending or dead `github-event` job keeps its
-- JSON payload as the body (JSON text is what the job parses); every other payload is dropped.
-- Their digest is unknown (NULL). The dropped column's space is reused by later rows (or given
-- back by `VACUUM FULL deliveries`).

ALTER TABLE deliveries
    ADD COLUMN body_sha256 BYTEA,
    ADD COLUMN body BYTEA;

UPDATE deliveries AS d SET body = convert_to(d.payload::text, 'UTF8')
WHERE EXISTS (
    SELECT 1 FROM jobs AS j
    WHERE j.kind = 'github-event' AND j.subject = d.id AND j.state IN ('pending', 'dead')
);

ALTER TABLE deliveries DROP COLUMN payload;
