-- 0003_api_key_changes.sql — tell every server at once when an API key stops working.
-- Owned by src/tenancy/ (key_cache.c keeps publishable keys in memory on each instance).
--
-- Invariants:
--  1. Any UPDATE or DELETE of an api_keys row (a revocation, a store deleted with its keys)
--     sends NOTIFY pe_api_keys with the row's key_hash, delivered when the transaction commits,
--     so an instance evicts the key from its cache before it could authenticate it again.
--  2. The payload is the SHA-256 hex of the key, never the key.

CREATE FUNCTION api_keys_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pe_api_keys', OLD.key_hash);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_notify_change();
