-- cdnwatch store, version 2: published host-list versions, decision events, manual overrides.

-- Every published host-list document. `version` is the document's configVersion: AUTOINCREMENT
-- makes SQLite never hand out a number twice, even after rows are deleted, and the row is written
-- in the same transaction as the document's bytes and the events that caused it. A restored older
-- copy of the file is caught by the floor file beside it (publish.rs) and `serve --bump-version`.
CREATE TABLE versions (
    version      INTEGER PRIMARY KEY AUTOINCREMENT,
    issued_at_ms INTEGER NOT NULL,
    body         BLOB NOT NULL,        -- the exact bytes served
    key_id       TEXT NOT NULL,        -- the Ed25519 key that signed them
    signature    TEXT NOT NULL,        -- base64 signature over `body`
    reason       TEXT NOT NULL,        -- why this version exists (quorum_fall, rise, resign, override …)
    content      TEXT NOT NULL         -- the hosts' state without timestamps: equal content, no new version
);

-- Every decision and every refusal of the engine, with its evidence.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    host        TEXT,                  -- NULL for events about the whole round (freeze, origin_fault)
    old_enabled INTEGER,
    new_enabled INTEGER,
    reason      TEXT NOT NULL,         -- quorum_fall, ratio, vendor_wide, fail_open, override, freeze, rise …
    detail      TEXT NOT NULL,
    evidence    TEXT NOT NULL,         -- JSON: region -> {ok, failed, invalid}
    samples     TEXT NOT NULL,         -- JSON array of failed results
    version     INTEGER                -- the version this event produced, if any
);
CREATE INDEX events_at ON events (at_ms);
CREATE INDEX events_host_at ON events (host, at_ms);

-- Manual overrides set by an operator with the admin token.
CREATE TABLE overrides (
    id            INTEGER PRIMARY KEY,
    host          TEXT NOT NULL,
    kind          TEXT NOT NULL,       -- force_disable, force_enable, observe_only
    reason        TEXT NOT NULL,
    actor         TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    cleared_at_ms INTEGER              -- set when cleared before expiry
);
