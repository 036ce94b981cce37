-- ciam SQLite schema, version 2: rate-limit counters (CounterStore).
--
-- One row per key, window length and window; the count is bumped by an upsert, which is atomic.
-- Windows older than the previous one are deleted by the next hit on the key.

CREATE TABLE rate_counters (
    key          TEXT    NOT NULL,
    window_ms    INTEGER NOT NULL,
    window_index INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key, window_ms, window_index)
) STRICT;
