-- 0018_exposures.sql — who was exposed to which experiment variant, rolled up from the
-- experiment.exposure.assigned events that OFREP records (src/flags/exposure.c), so measuring an
-- experiment reads rollups, never raw events (src/aggregate/run.c writes it; the measurement of
-- issue 19 reads it).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Layer 1, like agg_sessions: one row per session × flag × unit, a function of the session's
--     events only (the aggregation rebuilds a touched session's rows whole), so incremental and
--     full runs agree exactly.
--  2. variant is the unit's first variant in the session (ties by event id), first_at its first
--     exposure there; holdout marks exposures served from the store's global holdout (the
--     event's custom.holdout), which are not part of an experiment.
--  3. Keys lead with store_id.
--
-- Backfill: exposures already stored are rolled up by `profit-engine aggregate --full` (the
-- incremental job only reads events that arrive after its watermark).

CREATE TABLE agg_exposures (
    store_id   uuid        NOT NULL,
    session_id text        NOT NULL,
    flag_key   text        NOT NULL,
    unit       text        NOT NULL,
    variant    text        NOT NULL,
    first_at   timestamptz NOT NULL,
    holdout    boolean     NOT NULL,
    PRIMARY KEY (store_id, session_id, flag_key, unit)
);
CREATE INDEX agg_exposures_flag_idx ON agg_exposures (store_id, flag_key, unit, first_at);
