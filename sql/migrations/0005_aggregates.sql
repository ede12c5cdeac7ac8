-- 0005_aggregates.sql — the aggregation pipeline's tables: per-session facts derived from the
-- raw events, the per-day / per-week / per-month rollups the dashboard reads, and the job's
-- watermark. Owned by src/aggregate/ (the job in run.c writes, read.c reads).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Two layers (see src/aggregate/run.c for how a run moves between them):
--
--   events ──(touched sessions)──▶ agg_sessions, agg_session_products, agg_orders   (layer 1)
--          ──(touched days)──────▶ agg_daily, agg_daily_segments, agg_funnel_hourly,
--                                  agg_product_daily, agg_category_daily            (layer 2)
--          ──(touched weeks/months)▶ agg_weekly, agg_monthly                        (layer 2)
--
-- Invariants:
--  1. Every key leads with store_id (Citus distributes by it unchanged); every statement of
--     src/aggregate/ filters by store_id.
--  2. Layer 1 rows are a pure function of the events of one session; layer 2 rows are a pure
--     function of the layer 1 rows of one store-local day (week, month). A run recomputes whole
--     sessions and whole buckets (DELETE + INSERT … SELECT … GROUP BY), never adds deltas, so
--     rerunning changes nothing and the arrival order of events does not matter.
--  3. Days are store-local: a timestamp's day is (occurred_at AT TIME ZONE stores.timezone)::date.
--     A session belongs to the day (and hour) it started; orders, product views, add-to-carts and
--     purchases belong to the day they happened.
--  4. Distinct counts are exact for every period they are stored for: visitors and customers of
--     a week or month are counted over that period's layer 1 rows, not summed from days.
--  5. Funnel reach is ordered per session: a session reaches step k when it has events of steps
--     1..k at non-decreasing times (ties broken by step), see agg_funnel_reach below.

-- ---- helpers ------------------------------------------------------------------------------------

-- The ordered funnel as an aggregate over a session's funnel events in time order: the state is
-- the highest step reached so far; a step counts only when it is the next one.
CREATE FUNCTION agg_funnel_next(state smallint, step smallint) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN step = state + 1 THEN step ELSE state END $$;
CREATE AGGREGATE agg_funnel_reach(smallint) (
    SFUNC = agg_funnel_next, STYPE = smallint, INITCOND = '0', PARALLEL = SAFE);

-- The country of a session: the region subtag of context.locale ('de-DE', 'pt_BR',
-- 'zh-Hant-TW' → 'DE', 'BR', 'TW'), upper-cased; NULL when the locale has no alphabetic region.
-- The event model carries no country of the visitor (checkout.shipping.submitted's country is
-- where the parcel goes), so the browser's locale is the signal, as in most web analytics.
CREATE FUNCTION agg_locale_country(locale text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT upper(substring(locale FROM '^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?[-_]([A-Za-z]{2})(?:[-_.@]|$)')) $$;

-- The host of a referrer URL, lower-cased without a leading 'www.'; NULL when it is not a URL.
CREATE FUNCTION agg_referrer_host(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT nullif(regexp_replace(lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)')), '^www\.', ''), '') $$;

-- A row's xmin (a 32-bit xid) widened to xid8 against m, the current snapshot's xmax as bigint,
-- so that it can be tested with pg_visible_in_snapshot: every xid we can see is less than 2^31
-- behind xmax. Frozen rows come out as very old xids, which every snapshot sees. One expression,
-- so the planner inlines it.
CREATE FUNCTION agg_xid8(x xid, m bigint) RETURNS xid8
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (CASE WHEN x::text::bigint <= (m & 4294967295)
                       THEN (m >> 32 << 32) | x::text::bigint
                       ELSE greatest((m >> 32 << 32) - 4294967296 + x::text::bigint, 3)
                  END)::text::xid8 $$;

-- ---- layer 1: per session ---------------------------------------------------------------------

-- One row per session. device, country and source describe how the session arrived: the first
-- device type and locale seen in it; source is the first utm_source (lower case), else the
-- landing event's referrer host, else 'direct'. Unknown values are 'unknown'.
CREATE TABLE agg_sessions (
    store_id     uuid        NOT NULL,
    session_id   text        NOT NULL,
    started_at   timestamptz NOT NULL,
    day          date        NOT NULL,
    hour         smallint    NOT NULL CHECK (hour BETWEEN 0 AND 23),
    visitor      text        NOT NULL, -- anonymousId of the first event
    device       text        NOT NULL,
    country      text        NOT NULL,
    source       text        NOT NULL,
    reach        smallint    NOT NULL CHECK (reach BETWEEN 0 AND 5),
    orders       integer     NOT NULL,
    PRIMARY KEY (store_id, session_id)
);
CREATE INDEX agg_sessions_day_idx ON agg_sessions (store_id, day);

-- Product activity of a session on one day (a session may cross midnight). category is the
-- event's (or line item's) own category, '' when it has none.
CREATE TABLE agg_session_products (
    store_id    uuid    NOT NULL,
    session_id  text    NOT NULL,
    day         date    NOT NULL,
    product_id  text    NOT NULL,
    category    text    NOT NULL,
    views       integer NOT NULL,
    cart_adds   integer NOT NULL,
    purchases   integer NOT NULL, -- orders containing the product
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL, -- Σ price × quantity of its order lines
    PRIMARY KEY (store_id, session_id, day, product_id, category)
);
CREATE INDEX agg_session_products_day_idx ON agg_session_products (store_id, day);

-- One row per checkout.order.completed. customer is the order's userId, else its anonymousId.
CREATE TABLE agg_orders (
    store_id     uuid        NOT NULL,
    session_id   text        NOT NULL,
    event_id     uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    day          date        NOT NULL,
    customer     text        NOT NULL,
    value        numeric     NOT NULL,
    units        bigint      NOT NULL,
    PRIMARY KEY (store_id, session_id, event_id)
);
CREATE INDEX agg_orders_day_idx ON agg_orders (store_id, day);
-- "When did this customer first order" (new vs returning).
CREATE INDEX agg_orders_customer_idx ON agg_orders (store_id, customer, day);

-- ---- layer 2: rollups the API reads -----------------------------------------------------------

-- Per store and day. sessions, visitors, reach_* and converted_sessions count sessions that
-- started that day; orders, revenue, units, customers, product_views and cart_adds count what
-- happened that day. A new customer placed their first order ever that day; a returning one had
-- ordered before. Rates are NULL when their denominator is 0.
CREATE TABLE agg_daily (
    store_id            uuid    NOT NULL,
    day                 date    NOT NULL,
    sessions            integer NOT NULL,
    visitors            integer NOT NULL,
    reach_cart          integer NOT NULL,
    reach_checkout      integer NOT NULL,
    reach_shipping      integer NOT NULL,
    reach_payment       integer NOT NULL,
    reach_confirmation  integer NOT NULL,
    converted_sessions  integer NOT NULL, -- sessions with at least one order
    product_views       integer NOT NULL,
    cart_adds           integer NOT NULL,
    orders              integer NOT NULL,
    revenue             numeric NOT NULL,
    units               bigint  NOT NULL,
    customers           integer NOT NULL,
    new_customers       integer NOT NULL,
    returning_customers integer NOT NULL,
    aov                   numeric GENERATED ALWAYS AS (revenue / nullif(orders, 0)) STORED,
    conversion_rate       numeric GENERATED ALWAYS AS
                              (converted_sessions::numeric / nullif(sessions, 0)) STORED,
    cart_abandonment_rate numeric GENERATED ALWAYS AS
                              (1 - reach_confirmation::numeric / nullif(reach_cart, 0)) STORED,
    PRIMARY KEY (store_id, day)
);

-- The same per device × country × traffic source (distinct counts within the segment).
CREATE TABLE agg_daily_segments (
    store_id            uuid    NOT NULL,
    day                 date    NOT NULL,
    device              text    NOT NULL,
    country             text    NOT NULL,
    source              text    NOT NULL,
    sessions            integer NOT NULL,
    visitors            integer NOT NULL,
    reach_cart          integer NOT NULL,
    reach_checkout      integer NOT NULL,
    reach_shipping      integer NOT NULL,
    reach_payment       integer NOT NULL,
    reach_confirmation  integer NOT NULL,
    converted_sessions  integer NOT NULL,
    product_views       integer NOT NULL,
    cart_adds           integer NOT NULL,
    orders              integer NOT NULL,
    revenue             numeric NOT NULL,
    units               bigint  NOT NULL,
    customers           integer NOT NULL,
    new_customers       integer NOT NULL,
    returning_customers integer NOT NULL,
    aov                   numeric GENERATED ALWAYS AS (revenue / nullif(orders, 0)) STORED,
    conversion_rate       numeric GENERATED ALWAYS AS
                              (converted_sessions::numeric / nullif(sessions, 0)) STORED,
    cart_abandonment_rate numeric GENERATED ALWAYS AS
                              (1 - reach_confirmation::numeric / nullif(reach_cart, 0)) STORED,
    PRIMARY KEY (store_id, day, device, country, source)
);

-- Funnel reach by the store-local hour the session started (the breakdown by hour of day).
CREATE TABLE agg_funnel_hourly (
    store_id            uuid     NOT NULL,
    day                 date     NOT NULL,
    hour                smallint NOT NULL,
    sessions            integer  NOT NULL,
    reach_cart          integer  NOT NULL,
    reach_checkout      integer  NOT NULL,
    reach_shipping      integer  NOT NULL,
    reach_payment       integer  NOT NULL,
    reach_confirmation  integer  NOT NULL,
    PRIMARY KEY (store_id, day, hour)
);

-- Per product and day; category is the product's (greatest non-empty) category that day.
CREATE TABLE agg_product_daily (
    store_id    uuid    NOT NULL,
    day         date    NOT NULL,
    product_id  text    NOT NULL,
    category    text,
    views       integer NOT NULL,
    cart_adds   integer NOT NULL,
    purchases   integer NOT NULL,
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL,
    PRIMARY KEY (store_id, day, product_id)
);

-- Per category and day ('uncategorized' for events without one).
CREATE TABLE agg_category_daily (
    store_id    uuid    NOT NULL,
    day         date    NOT NULL,
    category    text    NOT NULL,
    views       integer NOT NULL,
    cart_adds   integer NOT NULL,
    purchases   integer NOT NULL,
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL,
    PRIMARY KEY (store_id, day, category)
);

-- ISO weeks (period = the Monday) and calendar months (period = the 1st), store-local. Every
-- distinct count is over the whole period: visitors with sessions in it, customers ordering in
-- it, new customers whose first order ever falls in it.
CREATE TABLE agg_weekly (
    store_id            uuid    NOT NULL,
    period              date    NOT NULL,
    sessions            integer NOT NULL,
    visitors            integer NOT NULL,
    reach_cart          integer NOT NULL,
    reach_checkout      integer NOT NULL,
    reach_shipping      integer NOT NULL,
    reach_payment       integer NOT NULL,
    reach_confirmation  integer NOT NULL,
    converted_sessions  integer NOT NULL,
    product_views       integer NOT NULL,
    cart_adds           integer NOT NULL,
    orders              integer NOT NULL,
    revenue             numeric NOT NULL,
    units               bigint  NOT NULL,
    customers           integer NOT NULL,
    new_customers       integer NOT NULL,
    returning_customers integer NOT NULL,
    aov                   numeric GENERATED ALWAYS AS (revenue / nullif(orders, 0)) STORED,
    conversion_rate       numeric GENERATED ALWAYS AS
                              (converted_sessions::numeric / nullif(sessions, 0)) STORED,
    cart_abandonment_rate numeric GENERATED ALWAYS AS
                              (1 - reach_confirmation::numeric / nullif(reach_cart, 0)) STORED,
    PRIMARY KEY (store_id, period)
);
CREATE TABLE agg_monthly (LIKE agg_weekly INCLUDING ALL);

-- ---- the job's progress -----------------------------------------------------------------------

-- Per job and store: the snapshot of the last run (events visible in it are aggregated) and the
-- database time it was taken. The next run reads events received since taken_at minus the
-- settle window that are not visible in that snapshot (src/aggregate/run.c, invariant 3).
CREATE TABLE agg_watermarks (
    store_id    uuid         NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    job         text         NOT NULL,
    snapshot    pg_snapshot  NOT NULL,
    taken_at    timestamptz  NOT NULL,
    full_at     timestamptz,           -- the last full recompute
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, job)
);
