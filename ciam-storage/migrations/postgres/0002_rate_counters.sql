-- ciam PostgreSQL schema, version 2: rate-limit counters (CounterStore).
--
-- One row per key, window length and window; the count is bumped by an upsert
-- (INSERT ... ON CONFLICT DO UPDATE), which is atomic under concurrency. Windows older than
-- the previous one are deleted by the next hit on the key.

CREATE TABLE rate_counters (
    key          TEXT   NOT NULL,
    window_ms    BIGINT NOT NULL,
    window_index BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    CONSTRAINT rate_counters_pkey PRIMARY KEY (key, window_ms, window_index)
);
