-- cdnwatch store, version 3: an index of the failed raw results, by time.
--
-- The incident report reads the phase of every failure in its window. Without this index it reads
-- every result of the window to find the few that failed (a few hours of 3,000 series are ~10^6
-- rows: 150 ms); with it, only the failed ones (4 ms). Partial, so it costs nothing for the
-- successful results that are most of the writes.
CREATE INDEX results_failed_at ON results (at_ms) WHERE failure IS NOT NULL;
