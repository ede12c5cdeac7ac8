-- 0012_login_throttle.sql — failed sign-ins per account (lower-case email) and per remote
-- address, so that every instance behind the load balancer slows down and locks the same
-- guesser. Owned by src/tenancy/throttle.c.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. One row per (kind, key); failures counts the failures since window_started_at, and a
--     failure after the window has passed starts a new window at 1.
--  2. locked_until, when in the future, refuses every sign-in for that account or address,
--     the right password included; NULL or past means not refused.
--  3. A successful sign-in deletes the account row, never the address row.

CREATE TABLE login_throttle (
    kind              text        NOT NULL CHECK (kind IN ('account', 'address')),
    key               text        NOT NULL CHECK (length(key) BETWEEN 1 AND 320),
    failures          integer     NOT NULL CHECK (failures > 0),
    window_started_at timestamptz NOT NULL,
    last_failed_at    timestamptz NOT NULL,
    locked_until      timestamptz,
    PRIMARY KEY (kind, key)
);
