-- Lean deliveries (issue 8).
--
-- A delivery keeps what deduplication needs (id, event, SHA-256 of the body, received_at);
-- only a delivery about an issue Lever tracks keeps its body, as received (bytes, never
-- re-serialized), for its `github-event` job. Until now every delivery kept its whole payload
-- as JSON, forever.
--
-- Rows of the previous schema: a delivery with a pending or dead `github-event` job keeps its
-- JSON payload as the body (JSON text is what the job parses); every other payload is dropped.
-- Their digest is unknown (NULL). SQLite cannot relax NOT NULL in place: the table is rebuilt.

CREATE TABLE deliveries_0003 (
    id          TEXT PRIMARY KEY NOT NULL,
    event       TEXT NOT NULL,
    body_sha256 BLOB,
    body        BLOB,
    received_at INTEGER NOT NULL
) STRICT;

INSERT INTO deliveries_0003 (id, event, body_sha256, body, received_at)
SELECT d.id, d.event, NULL,
       CASE WHEN EXISTS (
           SELECT 1 FROM jobs AS j
           WHERE j.kind = 'github-event' AND j.subject = d.id AND j.state IN ('pending', 'dead')
       ) THEN CAST(d.payload AS BLOB) END,
       d.received_at
FROM deliveries AS d;

DROP TABLE deliveries;

ALTER TABLE deliveries_0003 RENAME TO deliveries;

CREATE INDEX deliveries_received_at ON deliveries (received_at);
