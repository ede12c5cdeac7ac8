-- 0011_session_bounds.sql — the time span of each aggregated session, so that an incremental
-- run can find a touched session's events in the few daily partitions they sit in instead of
-- probing the session index of every partition (events is partitioned by occurred_at, not by
-- session). Owned by src/aggregate/run.c.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. ended_at is the latest occurred_at of the session's events, as started_at is the earliest;
--     a run rewrites both with the rest of the row.
--  2. NULL (rows written before this migration) means unknown: the run then reads the session
--     without an upper bound, which is correct and only slower.

ALTER TABLE agg_sessions ADD COLUMN ended_at timestamptz;
