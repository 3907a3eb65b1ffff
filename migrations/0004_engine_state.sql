-- cdnwatch store, version 4: the decision engine's memory, so a restart does not forget it.

-- One row: the engine's state that decides the next flip (per host: per-region rounds, hold,
-- consecutive disables, reason) as JSON (`engine::Memory`), rewritten whenever it changes.
-- `saved_at_ms` lets a start tell a fresh memory from a stale one (decision_loop.rs).
CREATE TABLE engine_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at_ms INTEGER NOT NULL,
    state       TEXT NOT NULL
);
