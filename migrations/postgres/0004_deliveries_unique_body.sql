-- A signed webhook body is accepted once (issue 9, item 8).
--
-- `X-GitHub-Delivery` is not covered by the signature: a captured body replayed under a fresh
-- delivery id must change nothing, so deliveries are also unique on the SHA-256 of their body
-- (GitHub's own redelivery keeps its delivery id, so it is caught by the id first). Rows of
-- older versions may repeat a digest (or have none): all but the first of a digest forget it,
-- so the index can be built; the rows themselves stay.

UPDATE deliveries SET body_sha256 = NULL
WHERE body_sha256 IS NOT NULL
  AND id <> (
      SELECT MIN(d.id) FROM deliveries AS d WHERE d.body_sha256 = deliveries.body_sha256
  );

CREATE UNIQUE INDEX deliveries_body_sha256 ON deliveries (body_sha256)
WHERE body_sha256 IS NOT NULL;
