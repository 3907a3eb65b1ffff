-- cdnwatch store, version 6: the notifications outbox.

-- One row per notice and channel, written in the same transaction as the incident change that
-- made it (`store/incidents.rs`), so a kill at any moment neither loses a notice nor makes it twice
-- (UNIQUE: a replayed change is ignored). The channel's sender takes the due pending rows, sends
-- them (grouped into one message), and marks them sent, or pending again later (`next_at_ms`, with
-- backoff), or failed past `[notify] max_attempts`.
CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    channel       TEXT NOT NULL,
    incident      INTEGER NOT NULL,
    seq           INTEGER NOT NULL,     -- the change's number in the incident's timeline
    change        TEXT NOT NULL,        -- opened, widened, decided, resolved, reopened
    notice        TEXT NOT NULL,        -- notify::Notice as JSON
    state         TEXT NOT NULL,        -- pending, sent, failed
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    next_at_ms    INTEGER NOT NULL,
    done_at_ms    INTEGER,
    last_error    TEXT,
    UNIQUE (channel, incident, seq)
);
CREATE INDEX notifications_due ON notifications (channel, next_at_ms) WHERE state = 'pending';
