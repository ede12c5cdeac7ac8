-- 0013_funnel_hourly_segments.sql — funnel reach by store-local hour of day for every
-- combination of the funnel's filters (device, country, traffic source), so that a step's
-- breakdown by hour honours the same filters as the funnel with one short index range read.
-- Owned by src/aggregate/ (run.c writes, read.c reads).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Why a cube and not one row per device × country × source like agg_daily_segments: a filter
-- names any subset of the three columns, and summing the matching detail rows of a range means
-- reading thousands of rows per day for a large store (hours × segments). Here each subset of the
-- columns (dims, a bit mask: device 4, country 2, source 1) is stored grouped by exactly those
-- columns, the others '' — so a filtered read is at most 24 rows per day, found by the key:
--   day = each day of the range (one index descent each), dims = the filters given,
--   device/country/source = their values or ''.
-- The key leads with the day (after the store) so that the job rebuilds a day through it; the
-- job writes a day's rows in key order, so one day's 24 hours of a filter share a heap page.
-- The store total (no filter, dims 0) is agg_funnel_hourly, as agg_daily is beside
-- agg_daily_segments.
--
-- Invariants:
--  1. A pure function of the agg_sessions rows of one store-local day (layer 2 of
--     0005_aggregates.sql): the job rebuilds whole days (DELETE + INSERT … GROUP BY), never adds
--     deltas, so an incremental run leaves exactly what a full one does.
--  2. For every dims, the rows of a (store, day, hour) sum to that hour's agg_funnel_hourly row.
--  3. A column outside dims is '' (a real device, country or source is never '' in agg_sessions
--     — and if one were, dims still keeps it apart from the wildcard).
--  4. Keys lead with store_id.

CREATE TABLE agg_funnel_hourly_segments (
    store_id            uuid     NOT NULL,
    day                 date     NOT NULL,
    dims                smallint NOT NULL CHECK (dims BETWEEN 1 AND 7),
    device              text     NOT NULL CHECK (dims & 4 <> 0 OR device = ''),
    country             text     NOT NULL CHECK (dims & 2 <> 0 OR country = ''),
    source              text     NOT NULL CHECK (dims & 1 <> 0 OR source = ''),
    hour                smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    sessions            integer  NOT NULL,
    reach_cart          integer  NOT NULL,
    reach_checkout      integer  NOT NULL,
    reach_shipping      integer  NOT NULL,
    reach_payment       integer  NOT NULL,
    reach_confirmation  integer  NOT NULL,
    PRIMARY KEY (store_id, day, dims, device, country, source, hour)
);

-- What is aggregated already (layer 1 is there), with the statement the job uses
-- (src/aggregate/run.c, SQL_INS_HOURLY_SEGMENTS) over every day: no recompute from the events.
INSERT INTO agg_funnel_hourly_segments
WITH cell AS MATERIALIZED (
    SELECT store_id, day, hour, device, country, source, count(*)::int AS sessions,
           count(*) FILTER (WHERE reach >= 1)::int AS reach_cart,
           count(*) FILTER (WHERE reach >= 2)::int AS reach_checkout,
           count(*) FILTER (WHERE reach >= 3)::int AS reach_shipping,
           count(*) FILTER (WHERE reach >= 4)::int AS reach_payment,
           count(*) FILTER (WHERE reach >= 5)::int AS reach_confirmation
      FROM agg_sessions GROUP BY store_id, day, hour, device, country, source)
SELECT * FROM (
    SELECT store_id, day, 7::smallint AS dims, device, country, source, hour, sessions,
           reach_cart, reach_checkout, reach_shipping, reach_payment, reach_confirmation
      FROM cell
    UNION ALL SELECT store_id, day, 6, device, country, '', hour, sum(sessions), sum(reach_cart),
           sum(reach_checkout), sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)
      FROM cell GROUP BY store_id, day, hour, device, country
    UNION ALL SELECT store_id, day, 5, device, '', source, hour, sum(sessions), sum(reach_cart),
           sum(reach_checkout), sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)
      FROM cell GROUP BY store_id, day, hour, device, source
    UNION ALL SELECT store_id, day, 4, device, '', '', hour, sum(sessions), sum(reach_cart),
           sum(reach_checkout), sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)
      FROM cell GROUP BY store_id, day, hour, device
    UNION ALL SELECT store_id, day, 3, '', country, source, hour, sum(sessions), sum(reach_cart),
           sum(reach_checkout), sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)
      FROM cell GROUP BY store_id, day, hour, country, source
    UNION ALL SELECT store_id, day, 2, '', country, '', hour, sum(sessions), sum(reach_cart),
           sum(reach_checkout), sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)
      FROM cell GROUP BY store_id, day, hour, country
    UNION ALL SELECT store_id, day, 1, '', '', source, hour, sum(sessions), sum(reach_cart),
           sum(reach_checkout), sum(reach_shipping), sum(reach_payment), sum(reach_confirmation)
      FROM cell GROUP BY store_id, day, hour, source) x
 ORDER BY store_id, day, dims, device, country, source, hour;
