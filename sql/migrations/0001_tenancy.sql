-- 0001_tenancy.sql — tenants and the credentials that resolve to them: stores, their API keys,
-- merchant users, store memberships and sign-in sessions. Owned by src/tenancy/.
--
-- Runs inside the migration runner's transaction (no BEGIN/COMMIT here). Append-only: a change
-- to this schema is a new migration file, never an edit of this one.
--
-- Invariants:
--  1. No secret is stored in clear: api_keys.key_hash and sessions.token_hash hold the SHA-256
--     (lower-case hex) of the presented string, and the checks below refuse anything else.
--     Passwords are argon2id strings produced by libsodium (crypto_pwhash_str).
--  2. Every row that belongs to a store carries store_id, and the primary key or an index of
--     every such table leads with it, so the schema distributes by store_id (Citus) unchanged.
--     The one global lookup is api_keys by key_hash, which is how a request finds its store.
--  3. Deleting a store deletes its keys and memberships; deleting a user deletes its
--     memberships and sessions (ON DELETE CASCADE).
--  4. The C code validates everything first (src/tenancy/validate.c); the checks here are the
--     last line of defence and agree with it. The store timezone is checked by the code against
--     pg_timezone_names at creation (a CHECK may not query a catalogue view).

-- A merchant's shop: the tenant. Everything the engine stores hangs off a store id.
CREATE TABLE stores (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Bytes, not characters: the C side limits the UTF-8 encoding to 200 bytes.
    name        text        NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 200),
    -- ISO 4217 code; money amounts in this store are in this currency unless an event says not.
    currency    char(3)     NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    -- IANA name; daily rollups cut days at local midnight in this zone.
    timezone    text        NOT NULL DEFAULT 'UTC' CHECK (octet_length(timezone) BETWEEN 1 AND 64),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Storefront (publishable, pk_…) and server-to-server (secret, sk_…) keys. Only the hash is
-- kept; key_prefix (the first 10 characters) lets a merchant tell keys apart in a list without
-- the key being recoverable from it.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    store_id    uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('publishable', 'secret')),
    key_hash    text        NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    key_prefix  text        NOT NULL CHECK (octet_length(key_prefix) = 10),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz NULL
);
-- Store-scoped access (list a store's keys, revoke one of them) leads with store_id; the
-- authentication hot path uses the unique index on key_hash.
CREATE INDEX api_keys_store_idx ON api_keys (store_id, id);

-- People who sign in to the dashboard. A user may belong to several stores.
CREATE TABLE merchant_users (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored as normalised by the code (ASCII lower case); uniqueness is case-insensitive.
    email          text        NOT NULL CHECK (octet_length(email) BETWEEN 3 AND 254),
    password_hash  text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX merchant_users_email_idx ON merchant_users (lower(email));

-- Which user may act on which store, and how.
CREATE TABLE store_members (
    store_id    uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL REFERENCES merchant_users (id) ON DELETE CASCADE,
    role        text        NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, user_id)
);
-- "Which stores does this user belong to" (the dashboard's store picker) and the foreign key's
-- cascade from merchant_users both look up by user_id.
CREATE INDEX store_members_user_idx ON store_members (user_id, store_id);

-- Dashboard sign-in sessions. A session ends at the earliest of: revoked_at, idle_expires_at
-- (pushed forward on use, never past expires_at) and expires_at (fixed at creation). Both
-- expiries are tested on every use, so an operator may shorten expires_at alone (to force a
-- sign-in by some date) without touching idle_expires_at; hence no CHECK tying the two.
CREATE TABLE sessions (
    token_hash       text        PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id          uuid        NOT NULL REFERENCES merchant_users (id) ON DELETE CASCADE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    idle_expires_at  timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
