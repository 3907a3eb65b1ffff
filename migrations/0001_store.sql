-- cdnwatch store, version 1.
--
-- Raw results are kept for a short window (default 48 h); minute and hour rollups per series for
-- longer windows (defaults 7 and 90 days). Times are Unix milliseconds (INTEGER), durations
-- microseconds (INTEGER): integers are smaller than REAL or TEXT in SQLite's record format, and a
-- NULL costs one byte. Enums are stored with their one spelling (model.rs `as_str`).

-- One row per probe series: what is probed (host, path) and from where (region, resolver).
-- Results refer to it by id, so the four names are stored once, not per result.
CREATE TABLE series (
    id       INTEGER PRIMARY KEY,
    host     TEXT NOT NULL,
    path     TEXT NOT NULL,
    region   TEXT NOT NULL,
    resolver TEXT NOT NULL,
    UNIQUE (host, path, region, resolver)
);

-- The identity of each prober (this process, or a remote regional agent) that sent results.
CREATE TABLE probers (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- One row per edge probe, or per failed DNS lookup (edge NULL).
CREATE TABLE results (
    id             INTEGER PRIMARY KEY,
    series_id      INTEGER NOT NULL REFERENCES series (id),
    prober_id      INTEGER NOT NULL REFERENCES probers (id),
    at_ms          INTEGER NOT NULL,   -- when the probe started
    edge           TEXT,               -- edge IP; NULL when DNS failed
    dns_us         INTEGER,            -- phase durations; NULL when the phase was not reached
    connect_us     INTEGER,
    tls_us         INTEGER,
    first_byte_us  INTEGER,
    transfer_us    INTEGER,
    total_us       INTEGER,
    status         INTEGER,            -- HTTP status, when a response head arrived
    body_bytes     INTEGER NOT NULL DEFAULT 0,
    cert_not_after INTEGER,            -- leaf certificate notAfter, Unix seconds
    cert_verified  INTEGER,            -- 1 verified, 0 not, NULL no TLS
    failure        TEXT,               -- failure class (dns_timeout, http_status …); NULL = ok
    phase          TEXT,               -- the phase the failure happened in
    detail         TEXT                -- a short human-readable detail of the failure
);
CREATE INDEX results_at ON results (at_ms);
CREATE INDEX results_series_at ON results (series_id, at_ms);

-- Rollups: one row per series per minute / per hour. `by_class` is a JSON object of failure counts
-- by class; `hist` holds six sparse latency histograms (dns, connect, tls, first byte, transfer,
-- total), enough for p50/p95/p99 per phase (store/hist.rs documents the encoding).
CREATE TABLE rollup_minute (
    series_id INTEGER NOT NULL,
    start_ms  INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    failures  INTEGER NOT NULL,
    by_class  TEXT,
    hist      BLOB NOT NULL,
    PRIMARY KEY (series_id, start_ms)
) WITHOUT ROWID;
CREATE INDEX rollup_minute_start ON rollup_minute (start_ms);

CREATE TABLE rollup_hour (
    series_id INTEGER NOT NULL,
    start_ms  INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    failures  INTEGER NOT NULL,
    by_class  TEXT,
    hist      BLOB NOT NULL,
    PRIMARY KEY (series_id, start_ms)
) WITHOUT ROWID;
CREATE INDEX rollup_hour_start ON rollup_hour (start_ms);

-- Small key/value state: the rollup watermarks ('minute_done_ms', 'hour_done_ms'): every period
-- that ends at or before the watermark has been rolled up. Written in the same transaction as the
-- rollup rows, so a crash never leaves a period half rolled up.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
