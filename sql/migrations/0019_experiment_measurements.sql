-- 0019_experiment_measurements.sql — one row per measurement of a running experiment (the
-- measure job, src/experiments/measure.c), so that its results carry a series for charts and
-- the history of how a decision came about.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Keys lead with store_id; every read filters by it.
--  2. doc is a compact snapshot of the results at measured_at: per variant units, conversion,
--     revenue and profit per visitor, the step's rate; the decision's action and its primary
--     effect with its interval. Rows are never updated.
--  3. Rows go with their ChangeSet (ON DELETE CASCADE) and are kept as long as it is.

CREATE TABLE experiment_measurements (
    store_id     uuid        NOT NULL,
    changeset_id text        NOT NULL,
    measured_at  timestamptz NOT NULL,
    doc          jsonb       NOT NULL,
    PRIMARY KEY (store_id, changeset_id, measured_at),
    FOREIGN KEY (store_id, changeset_id) REFERENCES changesets (store_id, id) ON DELETE CASCADE
);
