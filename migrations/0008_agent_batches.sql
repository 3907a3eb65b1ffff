-- cdnwatch store, version 8: regional agents' batches, each stored exactly once, and the minutes
-- their late results fell into.

-- Every agent batch whose results are stored, by its idempotency key: the agent, the agent
-- process's boot id and the batch's sequence number in that boot. Written in the same
-- transaction as the batch's results, so a batch re-sent after a lost acknowledgement is
-- recognised and stored nothing twice.
CREATE TABLE agent_batches (
    agent       TEXT NOT NULL,
    boot        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    stored_ms   INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    PRIMARY KEY (agent, boot, seq)
) WITHOUT ROWID;
CREATE INDEX agent_batches_stored ON agent_batches (stored_ms);

-- Minutes (their start, Unix ms) that received results after they were rolled up (an agent's
-- backlog replayed after an outage): the rollup rolls each again, and its hour, then forgets it.
CREATE TABLE late_minutes (
    start_ms INTEGER PRIMARY KEY
);
