-- cdnwatch store, version 5: incidents (one fault, however many hosts, edges and rounds it touches).

-- One row per incident, rewritten after each round that changes it (`incident::Incident` as JSON
-- in `body`: scope, classes, what it touched, decisions, timeline). The columns beside it are what
-- the lists select and order by. `id` is the tracker's number: never reused, so a restart (or a
-- kill between two rounds) continues the same incident instead of opening a second one.
CREATE TABLE incidents (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,        -- the scope's kind: edge, resolver, region_vendor, vendor …
    state          TEXT NOT NULL,        -- open, resolved
    opened_at_ms   INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    resolved_at_ms INTEGER,
    body           TEXT NOT NULL
);
CREATE INDEX incidents_state_opened ON incidents (state, opened_at_ms);
CREATE INDEX incidents_opened ON incidents (opened_at_ms);

-- The incident an event is about (NULL for events about none).
ALTER TABLE events ADD COLUMN incident INTEGER;
CREATE INDEX events_incident ON events (incident, at_ms) WHERE incident IS NOT NULL;
