-- cdnwatch store, version 7: silences and maintenance windows.

-- One row per silence made on the config page or through the API. The decision loop reads the live
-- ones (not cleared, not expired) every round, through the partial index, and mutes the notices
-- they match (notify/silence.rs); a silence never changes what the engine decides.
CREATE TABLE silences (
    id            INTEGER PRIMARY KEY,
    host          TEXT,                 -- each matcher NULL when not given; at least one given
    vendor        TEXT,
    region        TEXT,
    scope         TEXT,                 -- a scope kind: vendor, edge, …
    reason        TEXT NOT NULL,
    actor         TEXT NOT NULL,
    every         TEXT,                 -- a recurring window as JSON ({"weekly": …}); NULL: always
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,              -- NULL: a recurring window kept until cleared
    cleared_at_ms INTEGER
);
CREATE INDEX silences_live ON silences (expires_at_ms) WHERE cleared_at_ms IS NULL;
