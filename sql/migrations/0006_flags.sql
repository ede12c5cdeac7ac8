-- 0006_flags.sql — feature flags (story 8.9): the definitions, their history of changes, and
-- each store's flag settings (the Autopilot holdout and the version of its flag set).
--
-- Invariants:
--  1. Every row carries store_id, and every key leads with it (Citus-ready, tenant-scoped).
--  2. flag_settings.version is bumped in the same transaction as every change of the store's
--     flags or settings: it names one state of the whole set. Instances poll it (cheap: one row
--     per cached store) to notice a change that Redis could not announce.
--  3. The CHECKs repeat the C validator's rules (src/flags/validate.c): key syntax, kinds,
--     percentages, bounded text; variants and rules are validated JSON written only by the server.
--  4. flag_changes is append-only history: before/after are the flag as the API showed it.

CREATE TABLE flag_settings (
    store_id            uuid        PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    holdout_percentage  integer     NOT NULL DEFAULT 5 CHECK (holdout_percentage BETWEEN 0 AND 50),
    holdout_salt        text        NOT NULL CHECK (octet_length(holdout_salt) BETWEEN 1 AND 64),
    version             bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE flags (
    store_id            uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    key                 text        NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
    description         text        NOT NULL DEFAULT '' CHECK (octet_length(description) <= 500),
    kind                text        NOT NULL DEFAULT 'release'
                                    CHECK (kind IN ('release', 'experiment', 'autopilot')),
    variants            jsonb       NOT NULL CHECK (jsonb_typeof(variants) = 'array'
                                                    AND jsonb_array_length(variants) BETWEEN 1 AND 20),
    default_variant     text        NOT NULL,
    rollout_percentage  integer     NOT NULL DEFAULT 100
                                    CHECK (rollout_percentage BETWEEN 0 AND 100),
    rules               jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rules) = 'array'),
    enabled             boolean     NOT NULL DEFAULT false,
    salt                text        NOT NULL CHECK (salt ~ '^[A-Za-z0-9._-]{1,64}$'),
    version             bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, key)
);

CREATE TABLE flag_changes (
    store_id    uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    flag_key    text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('create', 'update', 'delete', 'settings')),
    actor       text        NOT NULL CHECK (octet_length(actor) BETWEEN 1 AND 200),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    before      jsonb,
    after       jsonb,
    PRIMARY KEY (store_id, id)
);
CREATE INDEX flag_changes_flag_idx ON flag_changes (store_id, flag_key, id DESC);

-- History is never rewritten (rows go only with their store, by the cascade).
CREATE FUNCTION flag_changes_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'flag_changes is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER flag_changes_append_only BEFORE UPDATE ON flag_changes
    FOR EACH ROW EXECUTE FUNCTION flag_changes_refuse();
