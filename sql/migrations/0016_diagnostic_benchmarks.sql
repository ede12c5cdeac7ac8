-- 0016_diagnostic_benchmarks.sql — a store's own benchmarks for the funnel doctor's benchmark_gap
-- findings (src/doctor/benchmarks.c writes and reads them; a step without a row uses the
-- industry benchmark shipped in src/doctor/analyze.c).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Keys lead with store_id; every read filters by it.
--  2. A drop-off strictly between 0 and 1 (0 or 1 is no benchmark a step could be tested
--     against); the step is one of the five funnel steps.

CREATE TABLE diagnostic_benchmarks (
    store_id   uuid             NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    step       text             NOT NULL
               CHECK (step IN ('cart', 'checkout', 'shipping', 'payment', 'confirmation')),
    dropoff    double precision NOT NULL CHECK (dropoff > 0 AND dropoff < 1),
    updated_at timestamptz      NOT NULL,
    PRIMARY KEY (store_id, step)
);
