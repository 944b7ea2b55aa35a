-- otwatch records store, schema 2 (PostgreSQL): the containment publisher's cursor, the last
-- audit trail seq published per topic. It lives in the records database so that a restored
-- backup never points the cursor past entries the database holds. IF NOT EXISTS: publishers
-- before schema 2 created this same table themselves, so a database may already have it.
CREATE TABLE IF NOT EXISTS containment_cursor (
    topic TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
