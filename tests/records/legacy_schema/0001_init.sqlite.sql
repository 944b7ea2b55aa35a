-- otwatch records store, schema 1 (SQLite). Times are ISO 8601 UTC text, so that the audit
-- trail hashes recompute byte for byte on both dialects; JSON columns are text.
CREATE TABLE counters (
    kind TEXT NOT NULL,
    year INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (kind, year)
);

CREATE TABLE processed_events (
    event_id TEXT PRIMARY KEY,
    record_id TEXT,
    processed_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE records (
    id TEXT PRIMARY KEY,
    classification TEXT NOT NULL,
    state TEXT NOT NULL,
    security_ticket TEXT NOT NULL UNIQUE,
    controller TEXT NOT NULL,
    tag TEXT NOT NULL,
    site TEXT NOT NULL,
    line TEXT NOT NULL,
    severity TEXT NOT NULL,
    description TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_event_at TEXT NOT NULL,
    rules_fired TEXT NOT NULL,
    criteria_version TEXT NOT NULL,
    correlation_key TEXT NOT NULL,
    cancel_reason TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX records_open_by_key ON records (correlation_key, state);

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE REFERENCES records (id),
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    indicators TEXT NOT NULL
);

-- No unique index on event_id: processed_events (same transaction) already makes it unique,
-- and a second index would cost a third of the insert time.
CREATE TABLE evidence (
    event_id TEXT NOT NULL,
    record_id TEXT NOT NULL REFERENCES records (id),
    sha256 TEXT NOT NULL,
    change_kind TEXT NOT NULL,
    verdict TEXT NOT NULL,
    severity TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    attached_at TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX evidence_by_record ON evidence (record_id);

CREATE TABLE signatures (
    record_id TEXT NOT NULL REFERENCES records (id),
    position INTEGER NOT NULL,
    printed_name TEXT NOT NULL,
    role TEXT NOT NULL,
    meaning TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    PRIMARY KEY (record_id, position)
);

CREATE TABLE audit_trail (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    field TEXT NOT NULL,
    old TEXT,
    new TEXT,
    reason TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_trail_by_record ON audit_trail (record_id);

CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only: DELETE refused');
END;

-- One row; PostgreSQL writers lock it so the trail chain has one head. Kept here for parity.
CREATE TABLE write_lock (id INTEGER PRIMARY KEY);
INSERT INTO write_lock (id) VALUES (1);
