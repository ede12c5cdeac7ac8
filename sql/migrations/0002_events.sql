-- 0002_events.sql — customer-journey events, their idempotency keys, and the dead letter.
-- Owned by src/collector/. Partitions are created and retired by pg_partman 4.7 (v4 API);
-- `profit-engine maintain` and the hourly job inside `serve` run its maintenance.
--
-- Invariants:
--  1. Every key leads with store_id (Citus distributes by it unchanged).
--  2. An event is stored once per (store_id, event_id): event_keys holds one row per stored
--     event, keyed by the UTC day of the client's own timestamp (identical on every retry of the
--     same event, unlike the skew-corrected time), clamped by the collector into the accepted
--     window so that key partitions exist. The collector inserts the key and the event in the
--     same statement, and stores the event only when its key was new.
--  3. events.occurred_at is the skew-corrected event time (receivedAt − (sentAt − timestamp)),
--     the partition key; client_ts keeps what the client said.
--  4. Nothing refused disappears: events_rejected keeps the raw JSON, a reason code and a
--     message; beyond the per-store hourly bound only a count is kept (events_rejected_overflow).

CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;

CREATE TABLE events (
    store_id     uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    name         text        NOT NULL,
    -- 0 none, 1 cart, 2 checkout, 3 shipping, 4 payment, 5 confirmation (pe_funnel_step_t)
    funnel_step  smallint    NOT NULL DEFAULT 0 CHECK (funnel_step BETWEEN 0 AND 5),
    session_id   text        NOT NULL,
    anonymous_id text        NOT NULL,
    user_id      text,
    client_ts    timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    page_path    text,
    utm_source   text,
    utm_medium   text,
    utm_campaign text,
    device_type  text,
    context      jsonb,
    properties   jsonb       NOT NULL,
    custom       jsonb,
    PRIMARY KEY (store_id, occurred_at, event_id)
) PARTITION BY RANGE (occurred_at);

-- Per-session reads (journeys, funnels by session).
CREATE INDEX events_session_idx ON events (store_id, session_id, occurred_at);
-- Incremental aggregation reads what arrived since a watermark: a BRIN index costs almost
-- nothing on ingest and received_at grows with insertion order.
CREATE INDEX events_received_brin ON events USING brin (received_at);

-- Daily partitions from 8 days back (the oldest accepted event is 7 days old) to 4 days ahead.
SELECT partman.create_parent(p_parent_table => 'public.events', p_control => 'occurred_at',
                             p_type => 'native', p_interval => 'daily', p_premake => 4,
                             p_start_partition => to_char(now() - interval '8 days', 'YYYY-MM-DD'));
UPDATE partman.part_config
   SET retention = '400 days', retention_keep_table = false, infinite_time_partitions = true
 WHERE parent_table = 'public.events';

CREATE TABLE event_keys (
    store_id uuid NOT NULL,
    key_day  date NOT NULL,
    event_id uuid NOT NULL,
    PRIMARY KEY (store_id, key_day, event_id)
) PARTITION BY RANGE (key_day);

SELECT partman.create_parent(p_parent_table => 'public.event_keys', p_control => 'key_day',
                             p_type => 'native', p_interval => 'daily', p_premake => 4,
                             p_start_partition => to_char(now() - interval '9 days', 'YYYY-MM-DD'));
-- A retry can only be accepted while its event is at most 7 days old; keys live a bit longer.
UPDATE partman.part_config
   SET retention = '10 days', retention_keep_table = false, infinite_time_partitions = true
 WHERE parent_table = 'public.event_keys';

CREATE TABLE events_rejected (
    store_id    uuid        NOT NULL,
    received_at timestamptz NOT NULL,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    event_index integer     NOT NULL,
    event_id    text,
    code        text        NOT NULL,
    message     text        NOT NULL,
    raw         text        NOT NULL,
    PRIMARY KEY (store_id, received_at, id)
) PARTITION BY RANGE (received_at);

SELECT partman.create_parent(p_parent_table => 'public.events_rejected',
                             p_control => 'received_at', p_type => 'native',
                             p_interval => 'daily', p_premake => 4);
UPDATE partman.part_config
   SET retention = '30 days', retention_keep_table = false, infinite_time_partitions = true
 WHERE parent_table = 'public.events_rejected';

-- Dead letters beyond the per-store hourly bound: counted, not kept.
CREATE TABLE events_rejected_overflow (
    store_id uuid        NOT NULL,
    hour     timestamptz NOT NULL,
    dropped  bigint      NOT NULL,
    PRIMARY KEY (store_id, hour)
);
