-- 0009_event_commits.sql — where the aggregation job starts reading: one row per transaction
-- that inserted events, with the least received_at its rows can carry. Written by a trigger, so
-- every write path (the collector, the simulator's direct load, an operator's INSERT) is
-- covered; read and pruned by src/aggregate/run.c.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Why: events.received_at is stamped when a request arrives, before the collector's group
-- commit makes the row visible, so "received since the last run" is not "not yet aggregated".
-- The job used to read every event received in a fixed settle window (5 minutes) before its last
-- run and keep those its last snapshot could not see; right after a bulk load that window held
-- millions of rows. With this log a run reads from the least bound of the transactions its
-- last snapshot could not see, which is exact for the collector.
--
-- Invariants:
--  1. Every transaction that inserts into events (through the partitioned parent, as every
--     writer does) has exactly one row here, written in that same transaction, so it becomes
--     visible, or disappears on rollback, together with its events.
--  2. received_from ≤ received_at of every event that transaction inserts. The collector sets
--     the transaction-local setting pe.received_from to the least received_at of its commit
--     (exact); any other writer gets the transaction's start minus 5 minutes, the stamp-to-
--     commit slack the job used to assume for everything.
--  3. Not tenant data: no store_id. A commit carries many stores' events; its bound serves them
--     all.
--  4. A row whose transaction every aggregation watermark has seen is useless and is deleted by
--     the job (xid below the least watermark xmin).

CREATE TABLE event_commits (
    xid           xid8        PRIMARY KEY DEFAULT pg_current_xact_id(),
    received_from timestamptz NOT NULL
);

CREATE FUNCTION event_commits_log() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_commits (xid, received_from)
    VALUES (pg_current_xact_id(),
            coalesce(nullif(current_setting('pe.received_from', true), '')::timestamptz,
                     now() - interval '5 minutes'))
    ON CONFLICT (xid) DO UPDATE
        SET received_from = least(event_commits.received_from, EXCLUDED.received_from);
    RETURN NULL;
END $$;

-- Statement level: one row per INSERT or COPY statement, whatever its size (a row-level trigger
-- would cost every event).
CREATE TRIGGER events_log_commit AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION event_commits_log();
