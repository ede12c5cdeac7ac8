-- 0007_changesets.sql — the execution plane's records: Autopilot ChangeSets, each store's profit
-- guardrails, the append-only hash-chained audit trail, and the notification outbox with the
-- in-app notifications it feeds. Owned by src/changeset/ and src/guardrails/.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file. Depends
-- on 0001 (stores) and 0002 (the partman schema) only, so it applies whether or not 0006 exists.
--
-- Invariants:
--  1. Every key leads with store_id (Citus distributes by it unchanged); every statement of
--     src/changeset/ and src/guardrails/ filters by store_id.
--  2. changesets keeps typed columns for what is filtered and sorted on (status, approval,
--     risk, times, version) and JSONB for the contract's sections; the service writes both in
--     one statement, and the C validator (src/changeset/model.c) has checked the JSONB first.
--  3. audit_events is append-only in the database itself: UPDATE, DELETE and TRUNCATE raise
--     (triggers; row triggers are cloned onto every partition pg_partman creates), and the
--     application role, where one exists (profit_engine_app), holds no such privilege. Only
--     pg_partman's retention drops whole partitions, after two years.
--  4. audit_events rows of one ChangeSet form a chain: seq 1, 2, …; prev_hash = the hash of the
--     previous seq; hash = SHA-256 over the canonical event (src/changeset/audit.c) and prev_hash.
--     changesets.audit_seq / audit_head record the chain's end (a deleted tail is detectable).
--  5. An outbox row is written in the same transaction as the event it announces and is marked
--     delivered only after delivery: a crash between commit and delivery loses nothing.

CREATE TABLE changesets (
    store_id          uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    id                text        NOT NULL CHECK (id ~ '^c[0-9a-z]{24}$'),
    version           integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    status            text        NOT NULL CHECK (status IN ('DRAFT', 'PENDING_APPROVAL', 'ACTIVE',
                                  'MEASURING', 'PROVEN', 'ROLLED_BACK', 'PERMANENT', 'ARCHIVED')),
    approval_status   text        NOT NULL
                      CHECK (approval_status IN ('pending', 'approved', 'rejected', 'expired')),
    risk_level        text        NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    action_type       text        NOT NULL,
    feature_flag_key  text        NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz NULL,
    ended_at          timestamptz NULL,
    expires_at        timestamptz NULL,
    hypothesis        jsonb       NOT NULL,
    action_plan       jsonb       NOT NULL,
    guardrails        jsonb       NOT NULL,
    rollback_plan     jsonb       NOT NULL,
    proof_plan        jsonb       NOT NULL,
    approval          jsonb       NOT NULL,
    execution         jsonb       NOT NULL,
    audit_seq         bigint      NOT NULL DEFAULT 0,
    audit_head        text        NULL CHECK (audit_head ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (store_id, id)
);
-- The list, newest first, optionally by status; the expiry job's scan.
CREATE INDEX changesets_list_idx ON changesets (store_id, created_at DESC, id DESC);
CREATE INDEX changesets_status_idx ON changesets (store_id, status, created_at DESC, id DESC);
CREATE INDEX changesets_expiry_idx ON changesets (expires_at) WHERE status = 'PENDING_APPROVAL';

-- A store's profit guardrails (pe/guardrails.h documents the JSON).
CREATE TABLE guardrails (
    store_id    uuid        PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    config      jsonb       NOT NULL,
    version     integer     NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The audit trail. No foreign key: events outlive their ChangeSet (compliance) and a cascade
-- would be a DELETE, which is refused.
CREATE TABLE audit_events (
    store_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    id              text        NOT NULL CHECK (id ~ '^c[0-9a-z]{24}$'),
    changeset_id    text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq >= 1),
    actor_type      text        NOT NULL CHECK (actor_type IN ('system', 'user', 'autopilot')),
    actor_id        text        NOT NULL,
    action          text        NOT NULL,
    previous_state  text        NULL,
    new_state       text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    metadata        jsonb       NOT NULL DEFAULT '{}',
    prev_hash       text        NULL,
    hash            text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (store_id, occurred_at, id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_events_chain_idx ON audit_events (store_id, changeset_id, seq);

SELECT partman.create_parent(p_parent_table => 'public.audit_events', p_control => 'occurred_at',
                             p_type => 'native', p_interval => 'monthly', p_premake => 4,
                             p_start_partition => to_char(date_trunc('month', now()), 'YYYY-MM-DD'));
UPDATE partman.part_config
   SET retention = '2 years', retention_keep_table = false, infinite_time_partitions = true
 WHERE parent_table = 'public.audit_events';

CREATE FUNCTION audit_events_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse();
-- TRUNCATE triggers are not cloned onto partitions: every partition gets its own, now and
-- whenever pg_partman creates or attaches one (an event trigger, where the migrating role may
-- create one; otherwise the maintenance run's call below and the REVOKE cover it).
CREATE FUNCTION audit_events_protect_partitions() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
         WHERE i.inhparent = 'public.audit_events'::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = i.inhrelid
                            AND t.tgname = 'audit_events_no_truncate')
    LOOP
        EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %s'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse()', part);
    END LOOP;
END
$$;
SELECT audit_events_protect_partitions();
CREATE FUNCTION audit_events_protect_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM audit_events_protect_partitions();
END
$$;
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER audit_events_protect ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
            EXECUTE FUNCTION audit_events_protect_ddl();
    END IF;
END
$$;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'profit_engine_app') THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM profit_engine_app;
    END IF;
END
$$;

-- Notifications to deliver (in-app, then webhook), written in the transition's transaction.
CREATE TABLE notification_outbox (
    store_id         uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    kind             text        NOT NULL,
    changeset_id     text        NULL,
    payload          jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz NULL,
    last_error       text        NULL,
    PRIMARY KEY (store_id, id)
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at)
    WHERE delivered_at IS NULL;

-- The merchant's in-app notifications; one per outbox row at most (redelivery is idempotent).
CREATE TABLE notifications (
    store_id      uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    outbox_id     bigint      NOT NULL,
    kind          text        NOT NULL,
    changeset_id  text        NULL,
    title         text        NOT NULL,
    body          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    read_at       timestamptz NULL,
    PRIMARY KEY (store_id, id),
    UNIQUE (store_id, outbox_id)
);
