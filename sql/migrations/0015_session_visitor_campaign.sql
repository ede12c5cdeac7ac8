-- 0015_session_visitor_campaign.sql — two more dimensions of a session in the session rollup
-- (agg_sessions, layer 1 of 0005_aggregates.sql), so that the funnel doctor can segment by them
-- without reading raw events: whether the visitor is new or returning, and the UTM campaign.
-- Owned by src/aggregate/run.c (writes) and read by src/doctor/run.c.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Definitions:
--   visitor_type  'new' when the session is its visitor's (agg_sessions.visitor, the anonymousId)
--                 first session of the store, else 'returning'. First means least
--                 (started_at, session_id) among the visitor's rows of agg_sessions of the store:
--                 the session_id breaks ties in time, so the answer never depends on the order in
--                 which sessions were aggregated.
--   campaign      the session's first non-empty utm_campaign (events in time order, ties by
--                 event_id), lower case; '' when none of its events has one.
--
-- Invariants:
--  1. campaign is a function of the session's events, like every other layer 1 column.
--  2. visitor_type is a function of the visitor's rows in agg_sessions (not of this session's
--     events alone): a session aggregated late that started before the visitor's first known
--     session turns that one into 'returning'. The job therefore recomputes the type of every
--     session of every visitor a run touches (before and after the rebuild: a session's visitor
--     may change too), so an incremental run leaves exactly what a full one does
--     (src/aggregate/run.c, invariant 5).
--  3. Keys lead with store_id; agg_sessions_visitor_idx serves invariant 2's per-visitor
--     recompute with one index range per visitor.
--
-- Backfill: visitor_type is computed here from the rows already there (no events read).
-- campaign would need every raw event of every store (a scan of all events partitions), which is
-- not cheap on a large database: rows written before this migration keep campaign = '' until
-- their session is aggregated again or `profit-engine aggregate --full` recomputes the store.
-- Sessions aggregated after it get their campaign.

ALTER TABLE agg_sessions
    ADD COLUMN visitor_type text NOT NULL DEFAULT 'new'
        CHECK (visitor_type IN ('new', 'returning')),
    ADD COLUMN campaign text NOT NULL DEFAULT '';

CREATE INDEX agg_sessions_visitor_idx ON agg_sessions (store_id, visitor, started_at, session_id);

UPDATE agg_sessions x SET visitor_type = 'returning'
  FROM (SELECT store_id, session_id,
               row_number() OVER (PARTITION BY store_id, visitor
                                  ORDER BY started_at, session_id) AS n
          FROM agg_sessions) f
 WHERE x.store_id = f.store_id AND x.session_id = f.session_id AND f.n > 1;
