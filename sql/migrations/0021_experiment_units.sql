-- 0021_experiment_units.sql — incremental measurement of running experiments: one row per unit of
-- every ACTIVE or MEASURING ChangeSet with its outcomes so far, kept up to date from only the
-- units whose rollups changed since the last measurement (src/experiments/units.c). Reading an
-- experiment's arms is then one aggregate over its units, whatever the history behind them.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- How a run knows what changed: the aggregation (src/aggregate/run.c) rebuilds a touched
-- session's layer 1 rows whole — agg_sessions, agg_orders and agg_session_products are deleted
-- and inserted together — and an exposure's agg_exposures rows the same way. Statement triggers
-- with transition tables log the visitors (= units) of every agg_sessions / agg_exposures row
-- inserted or deleted in experiment_dirty_units, in the aggregation's own transaction, for
-- stores with an ACTIVE or MEASURING ChangeSet (its approval committed long before: a unit
-- table built later starts from rollups that already hold what was not logged). A cost change in the catalogue changes the profit of every
-- unit that bought the product: it marks the store in experiment_dirty_stores (rebuild all).
--
-- Invariants:
--  1. A row of experiment_units is a function of the stored rollups of its unit (the same
--     per-unit values as results.c's SQL_ARMS, in numeric, so sums are exact in any order):
--     an incremental refresh and a rebuild from scratch give identical rows, hence identical
--     arms; experiment_arms is always the sum of experiment_unit_values over them.
--  2. Every change to a unit's rollups after a refresh is either logged in
--     experiment_dirty_units (committed with the change) or seen by the next refresh's
--     rebuild; a refresh drains the log in the same transaction that rewrites those units.
--  3. Rows exist only for running experiments (experiment_unit_state lists them); an ended
--     experiment is measured from the rollups directly, bounded by its end. A refresh
--     rebuilds an experiment from scratch when it has no state, its flag or start changed,
--     the store's costs changed, or its last rebuild is a day old (a safety net: an
--     aggregation that began before the approval and committed after the first build could
--     otherwise be missed).
--  4. Keys lead with store_id; every read filters by it.

CREATE TABLE experiment_unit_state (
    store_id     uuid        NOT NULL,
    changeset_id text        NOT NULL,
    flag_key     text        NOT NULL,
    started_at   timestamptz NOT NULL,
    step         integer     NOT NULL, -- the target step of the primary metric, 1..5
    kind         integer     NOT NULL, -- the primary: 0 a step, 1 conversion, 2 revenue, 3 profit
    built_at     timestamptz NOT NULL, -- the last rebuild from scratch
    refreshed_at timestamptz NOT NULL,
    PRIMARY KEY (store_id, changeset_id),
    FOREIGN KEY (store_id, changeset_id) REFERENCES changesets (store_id, id) ON DELETE CASCADE
);

CREATE TABLE experiment_units (
    store_id     uuid        NOT NULL,
    changeset_id text        NOT NULL,
    unit         text        NOT NULL,
    variant      text        NOT NULL, -- the first variant (intention to treat)
    first_at     timestamptz NOT NULL, -- the first exposure since the experiment started
    reach        integer     NOT NULL, -- deepest funnel step from first_at on
    orders       bigint      NOT NULL,
    revenue      numeric     NOT NULL,
    cost         numeric     NOT NULL, -- cost of goods (unknown costs at the default margin)
    known        numeric     NOT NULL, -- revenue whose cost is known
    pre_reach    integer     NOT NULL, -- the pre-period (CUPED covariate); -1: no session
    pre_orders   bigint      NOT NULL,
    pre_revenue  numeric     NOT NULL,
    pre_cost     numeric     NOT NULL,
    has_pre      boolean     NOT NULL,
    PRIMARY KEY (store_id, changeset_id, unit),
    FOREIGN KEY (store_id, changeset_id) REFERENCES experiment_unit_state (store_id, changeset_id)
        ON DELETE CASCADE
);
CREATE INDEX experiment_units_first_idx ON experiment_units (store_id, changeset_id, first_at);
-- A logged unit's rows in every experiment, and its exposures to every flag, with one lookup
-- each (a refresh's cost is then the log's, whatever the number of experiments).
CREATE INDEX experiment_units_unit_idx ON experiment_units (store_id, unit);
CREATE INDEX agg_exposures_unit_idx ON agg_exposures (store_id, unit);

-- What one unit adds to its arm, in the columns results.c reads (SQL_ARMS's): the arms of an
-- experiment are the sums of these over its units.
CREATE VIEW experiment_unit_values AS
SELECT e.store_id, e.changeset_id, e.unit, e.variant, e.first_at,
       1 AS units,
       (e.orders > 0)::int AS converted,
       e.orders,
       e.revenue,
       e.revenue * e.revenue AS revenue_sq,
       e.revenue - e.cost AS profit,
       (e.revenue - e.cost) * (e.revenue - e.cost) AS profit_sq,
       (e.reach >= s.step - 1)::int AS before,
       (e.reach >= s.step)::int AS passed,
       e.known,
       CASE WHEN p.in_primary THEN p.x ELSE 0 END AS x,
       CASE WHEN p.in_primary THEN p.x * p.x ELSE 0 END AS x_sq,
       CASE WHEN p.in_primary THEN p.x * p.y ELSE 0 END AS xy,
       e.pre_revenue - e.pre_cost AS pre_profit,
       (e.pre_revenue - e.pre_cost) * (e.pre_revenue - e.pre_cost) AS pre_profit_sq,
       (e.pre_revenue - e.pre_cost) * (e.revenue - e.cost) AS pre_profit_xy,
       e.has_pre::int AS with_pre
  FROM experiment_units e
  JOIN experiment_unit_state s ON s.store_id = e.store_id AND s.changeset_id = e.changeset_id
 CROSS JOIN LATERAL (
       SELECT CASE s.kind WHEN 0 THEN (e.reach >= s.step)::int::numeric
                          WHEN 1 THEN (e.orders > 0)::int::numeric
                          WHEN 2 THEN e.revenue ELSE e.revenue - e.cost END AS y,
              CASE s.kind WHEN 0 THEN (e.pre_reach >= s.step)::int::numeric
                          WHEN 1 THEN (e.pre_orders > 0)::int::numeric
                          WHEN 2 THEN e.pre_revenue ELSE e.pre_revenue - e.pre_cost END AS x,
              (s.kind <> 0 OR e.reach >= s.step - 1) AS in_primary) p;

-- The arms of every running experiment: the sums of experiment_unit_values over its units,
-- kept by adding the rewritten units' new values and subtracting their old ones (exact in
-- numeric), so reading an experiment is two rows whatever its size.
CREATE TABLE experiment_arms (
    store_id      uuid    NOT NULL,
    changeset_id  text    NOT NULL,
    variant       text    NOT NULL,
    units         numeric NOT NULL,
    converted     numeric NOT NULL,
    orders        numeric NOT NULL,
    revenue       numeric NOT NULL,
    revenue_sq    numeric NOT NULL,
    profit        numeric NOT NULL,
    profit_sq     numeric NOT NULL,
    before        numeric NOT NULL,
    passed        numeric NOT NULL,
    known         numeric NOT NULL,
    x             numeric NOT NULL,
    x_sq          numeric NOT NULL,
    xy            numeric NOT NULL,
    pre_profit    numeric NOT NULL,
    pre_profit_sq numeric NOT NULL,
    pre_profit_xy numeric NOT NULL,
    with_pre      numeric NOT NULL,
    PRIMARY KEY (store_id, changeset_id, variant),
    FOREIGN KEY (store_id, changeset_id) REFERENCES experiment_unit_state (store_id, changeset_id)
        ON DELETE CASCADE
);

CREATE TABLE experiment_dirty_units (
    store_id uuid NOT NULL,
    unit     text NOT NULL,
    PRIMARY KEY (store_id, unit)
);

CREATE TABLE experiment_dirty_stores (
    store_id uuid PRIMARY KEY
);

CREATE FUNCTION experiment_units_log_sessions() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO experiment_dirty_units (store_id, unit)
    SELECT DISTINCT x.store_id, x.visitor FROM changed x
     WHERE EXISTS (SELECT 1 FROM changesets c
                    WHERE c.store_id = x.store_id AND c.status IN ('ACTIVE', 'MEASURING'))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION experiment_units_log_exposures() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO experiment_dirty_units (store_id, unit)
    SELECT DISTINCT x.store_id, x.unit FROM changed x
     WHERE EXISTS (SELECT 1 FROM changesets c
                    WHERE c.store_id = x.store_id AND c.status IN ('ACTIVE', 'MEASURING'))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION experiment_units_log_costs() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO experiment_dirty_stores (store_id)
        SELECT DISTINCT n.store_id FROM changed n JOIN before o
            ON o.store_id = n.store_id AND o.sku = n.sku
         WHERE o.cost IS DISTINCT FROM n.cost
           AND EXISTS (SELECT 1 FROM changesets c
                       WHERE c.store_id = n.store_id AND c.status IN ('ACTIVE', 'MEASURING'))
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO experiment_dirty_stores (store_id)
        SELECT DISTINCT x.store_id FROM changed x
         WHERE EXISTS (SELECT 1 FROM changesets c
                    WHERE c.store_id = x.store_id AND c.status IN ('ACTIVE', 'MEASURING'))
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

-- Statement level with transition tables: one INSERT … SELECT per statement of the aggregation,
-- whatever its size (a row-level trigger would cost every session).
CREATE TRIGGER experiment_units_sessions_ins AFTER INSERT ON agg_sessions
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_sessions();
CREATE TRIGGER experiment_units_sessions_del AFTER DELETE ON agg_sessions
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_sessions();
CREATE TRIGGER experiment_units_exposures_ins AFTER INSERT ON agg_exposures
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_exposures();
CREATE TRIGGER experiment_units_exposures_del AFTER DELETE ON agg_exposures
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_exposures();
CREATE TRIGGER experiment_units_costs_ins AFTER INSERT ON products
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_costs();
CREATE TRIGGER experiment_units_costs_upd AFTER UPDATE ON products
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_costs();
CREATE TRIGGER experiment_units_costs_del AFTER DELETE ON products
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION experiment_units_log_costs();
