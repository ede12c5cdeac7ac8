-- 0010_customer_days.sql — exact distinct customers (and new ones) over any range of days
-- without a DISTINCT over orders on a dashboard read. Owned by src/aggregate/ (run.c writes,
-- read.c reads).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Each (customer, store-local day with an order of theirs) is counted under that day and the
-- customer's previous order day (-infinity for their first order ever). Within days lo..hi:
--   customers ordering   = Σ customers over day ∈ [lo, hi] and prev_day < lo
--   new customers        = Σ customers over day ∈ [lo, hi] and prev_day = -infinity
-- because a customer ordering in [lo, hi] has exactly one order day there whose previous order
-- day lies before lo: the first one in the range. The table holds at most one row per pair of
-- days, whatever the number of customers.
--
-- Invariants:
--  1. A pure function of agg_orders (layer 1): a row of day d counts the customers with an order
--     on d whose latest order day before d is prev_day. The job rebuilds whole days: the days
--     of the sessions it touched and every order day of the customers whose orders it moved
--     (their previous order days may have changed), never adds deltas.
--  2. Keys lead with store_id.

CREATE TABLE agg_customer_days (
    store_id   uuid    NOT NULL,
    day        date    NOT NULL,
    prev_day   date    NOT NULL, -- -infinity: the customer's first order ever
    customers  integer NOT NULL,
    PRIMARY KEY (store_id, day, prev_day)
);
