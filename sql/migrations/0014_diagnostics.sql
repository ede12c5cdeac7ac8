-- 0014_diagnostics.sql — the funnel doctor's runs and findings (src/doctor/run.c writes and
-- reads them; the analysis itself is src/doctor/analyze.c).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Keys lead with store_id; every read filters by it.
--  2. One run per store and window: a second run for the same (store, from, to) replaces the
--     first (run.c deletes it in the transaction that inserts the new one; the findings go with
--     it through the foreign key).
--  3. doc is the run or the finding exactly as the API answers it; the other columns are what
--     queries select by.
--  4. Runs are kept 400 days (run.c purges older ones of the store when it stores a run).

CREATE TABLE diagnostic_runs (
    store_id    uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    id          uuid        NOT NULL,
    window_from date        NOT NULL,
    window_to   date        NOT NULL CHECK (window_to >= window_from),
    created_at  timestamptz NOT NULL,
    doc         jsonb       NOT NULL,
    PRIMARY KEY (store_id, id),
    UNIQUE (store_id, window_from, window_to)
);
CREATE INDEX diagnostic_runs_latest_idx ON diagnostic_runs (store_id, created_at DESC, id);

CREATE TABLE findings (
    store_id    uuid             NOT NULL,
    run_id      uuid             NOT NULL,
    id          uuid             NOT NULL,
    rank        integer          NOT NULL CHECK (rank >= 1),
    kind        text             NOT NULL,
    step        text             NOT NULL,
    segment     jsonb            NOT NULL,
    likelihood  double precision NOT NULL CHECK (likelihood BETWEEN 0 AND 1),
    lost_profit double precision NOT NULL CHECK (lost_profit >= 0),
    doc         jsonb            NOT NULL,
    PRIMARY KEY (store_id, id),
    UNIQUE (store_id, run_id, rank),
    FOREIGN KEY (store_id, run_id) REFERENCES diagnostic_runs (store_id, id) ON DELETE CASCADE
);
