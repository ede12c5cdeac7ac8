/*
 * store.c — flags in PostgreSQL (0006_flags.sql): the merchant's reads and changes, the
 * history of changes, the store holdout, and the one statement that builds a store's flag-set
 * JSON (what Redis holds and engine.c compiles).
 *
 *   change ──BEGIN; bump flag_settings.version (row lock: one writer per store at a time);
 *            write flags; append flag_changes; COMMIT──▶ flags_propagate:
 *            set JSON from PostgreSQL ──▶ SET pe:{S}:flags ──▶ PUBLISH "<S> <version>"
 *            ──▶ this instance's copy
 *
 *   in a caller's transaction (pe_flags_put_tx / pe_flags_update_tx, the ChangeSet lifecycle):
 *            the same statements on the caller's connection, no BEGIN/COMMIT; the caller
 *            COMMITs, then calls pe_flags_publish ──▶ flags_propagate as above
 *
 * Every change, in either path, runs through change_on → tx_change: one implementation.
 *
 * Invariants:
 *  1. Every statement filters by store_id (a parameter that authentication resolved).
 *  2. Every change bumps the store's version in the same transaction as the change, so a
 *     version names exactly one state of the store's flags; the Redis copy and every cached
 *     copy carry the version they were built from.
 *  3. Redis is written only after COMMIT (by change() itself, or by the caller of a _tx write
 *     through pe_flags_publish); a Redis failure never fails the change (PostgreSQL is the
 *     truth; the poller of every instance picks the change up and repairs Redis).
 *  4. Bodies are validated (pe_flags_validate) before any statement runs; what is stored is
 *     the canonical form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags/flags_internal.h"

#define ACQUIRE_MS 3000

/* One flag as the API shows it. $1 store, $2 key. */
#define FLAG_JSON                                                                                  \
    "json_build_object('key', key, 'description', description, 'kind', kind, 'enabled', "          \
    "enabled, 'rolloutPercentage', rollout_percentage, 'variants', variants, 'defaultVariant', "   \
    "default_variant, 'rules', rules, 'salt', salt, 'version', version, 'createdAt', "             \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'updatedAt', "   \
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))::text"

int flags_load_pg_json(pe_flags_t *f, const char *store_id, char **json, size_t *len)
{
    static const char SQL[] =
        "SELECT json_build_object('storeId', s.id::text, 'version', coalesce(fs.version, 0),"
        " 'holdout', json_build_object('percentage', coalesce(fs.holdout_percentage, 5),"
        "   'salt', coalesce(fs.holdout_salt, s.id::text)),"
        " 'flags', coalesce((SELECT json_agg(json_build_object('key', fl.key, 'description',"
        "   fl.description, 'kind', fl.kind, 'enabled', fl.enabled, 'rolloutPercentage',"
        "   fl.rollout_percentage, 'variants', fl.variants, 'defaultVariant', fl.default_variant,"
        "   'rules', fl.rules, 'salt', fl.salt, 'version', fl.version) ORDER BY fl.key)"
        "   FROM flags fl WHERE fl.store_id = s.id), '[]'::json))::text"
        " FROM stores s LEFT JOIN flag_settings fs ON fs.store_id = s.id WHERE s.id = $1::uuid";
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    const char *params[1] = {store_id};
    *json = NULL;
    int rc = pe_db_acquire(f->db, ACQUIRE_MS, &conn);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn, SQL, 1, params, &res);
    if (rc != 0)
        goto out;
    if (pe_db_result_rows(res) != 1) {
        rc = PE_ENOTFOUND;
        goto out;
    }
    *json = strdup(pe_db_result_get(res, 0, 0));
    if (!*json) {
        rc = PE_ENOMEM;
        goto out;
    }
    *len = strlen(*json);
    rc = 0;
out:
    pe_db_result_free(res);
    pe_db_release(f->db, conn);
    return rc;
}

void flags_propagate(pe_flags_t *f, const char *store_id)
{
    char *json = NULL;
    size_t len = 0;
    if (flags_load_pg_json(f, store_id, &json, &len) != 0) {
        atomic_fetch_add(&f->publish_failures, 1);
        return; /* the poller of every instance (this one too) will catch up */
    }
    pe_flag_set_t *s = pe_flags_set_from_json(json, len);
    if (f->redis && s) {
        char key[128], msg[128];
        int klen = flags_redis_key(store_id, key, sizeof key);
        int mlen = snprintf(msg, sizeof msg, "%s %llu", store_id,
                            (unsigned long long)pe_flags_set_version(s));
        int rc = pe_redis_set(f->redis, key, (size_t)klen, json, len, 0);
        if (rc == 0)
            rc = pe_redis_publish(f->redis, PE_FLAGS_CHANNEL, msg, (size_t)mlen, NULL);
        if (rc == 0)
            atomic_fetch_add(&f->publishes, 1);
        else {
            atomic_fetch_add(&f->publish_failures, 1);
            pe_log(PE_LOG_WARN, "flags_publish_failed",
                   "store %s: the change is committed but Redis is unreachable (%s); instances "
                   "pick it up from PostgreSQL",
                   store_id, pe_strerror(rc));
        }
    }
    if (s)
        pe_flags_set_release(flags_install(f, store_id, s));
    free(json);
}

/* ---- reads -------------------------------------------------------------------------------- */

int pe_flags_list(pe_flags_t *f, const char *store_id, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    const char *params[1] = {store_id};
    cJSON *j = NULL;
    *out = NULL;
    int rc = pe_db_acquire(f->db, ACQUIRE_MS, &conn);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(conn,
                    "SELECT json_build_object('flags', coalesce(json_agg(t.j ORDER BY t.k), "
                    "'[]'::json), 'version', (SELECT coalesce(max(version), 0) FROM flag_settings "
                    "WHERE store_id = $1::uuid))::text FROM (SELECT key AS k, " FLAG_JSON
                    "::json AS j FROM flags WHERE store_id = $1::uuid) AS t",
                    1, params, &res);
    if (rc != 0)
        goto out;
    rc = pe_db_result_json(res, 0, 0, &j);
    if (rc != 0)
        goto out;
    *out = j;
    j = NULL;
out:
    cJSON_Delete(j);
    pe_db_result_free(res);
    pe_db_release(f->db, conn);
    return rc;
}

/* The flag's API form on conn (FOR UPDATE when lock). */
static int read_flag(pe_db_conn_t *conn, const char *store_id, const char *key, bool lock,
                     cJSON **out)
{
    const char *params[2] = {store_id, key};
    pe_db_result_t *res = NULL;
    *out = NULL;
    int rc = pe_db_exec(
        conn,
        lock ? "SELECT " FLAG_JSON " FROM flags WHERE store_id = $1::uuid AND key = $2 FOR UPDATE"
             : "SELECT " FLAG_JSON " FROM flags WHERE store_id = $1::uuid AND key = $2",
        2, params, &res);
    if (rc == 0 && pe_db_result_rows(res) != 1)
        rc = PE_ENOTFOUND;
    if (rc == 0)
        rc = pe_db_result_json(res, 0, 0, out);
    pe_db_result_free(res);
    return rc;
}

int pe_flags_get(pe_flags_t *f, const char *store_id, const char *key, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    *out = NULL;
    int rc = pe_db_acquire(f->db, ACQUIRE_MS, &conn);
    if (rc == 0)
        rc = read_flag(conn, store_id, key, false, out);
    pe_db_release(f->db, conn);
    return rc;
}

int pe_flags_history(pe_flags_t *f, const char *store_id, const char *key, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    const char *params[2] = {store_id, key};
    *out = NULL;
    int rc = pe_db_acquire(f->db, ACQUIRE_MS, &conn);
    if (rc != 0)
        goto out;
    rc = pe_db_exec(
        conn,
        "SELECT json_build_object('changes', coalesce(json_agg(json_build_object('action', "
        "action, 'actor', actor, 'changedAt', to_char(changed_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'before', before, 'after', after) ORDER BY id "
        "DESC), '[]'::json))::text FROM (SELECT * FROM flag_changes WHERE store_id = $1::uuid "
        "AND flag_key = $2 ORDER BY id DESC LIMIT 100) AS c",
        2, params, &res);
    if (rc == 0)
        rc = pe_db_result_json(res, 0, 0, out);
out:
    pe_db_result_free(res);
    pe_db_release(f->db, conn);
    return rc;
}

/* ---- changes ------------------------------------------------------------------------------ */

/* OP_PUT: create the flag, or replace (PUT) the one with that key when it is of replaces_kind. */
typedef enum { OP_CREATE, OP_UPDATE, OP_PUT, OP_DELETE, OP_SETTINGS } change_op_t;

typedef struct {
    change_op_t op;
    const char *store_id;
    const char *key;
    const char *actor;
    const cJSON *body;
    bool partial;
    int holdout;
    const char *replaces_kind; /* OP_PUT: the kind an existing flag must have; NULL = any */
    cJSON *result;             /* out */
    pe_refusal_t *err;
} change_t;

/* Bumps the store's version (and takes its row lock). */
static int bump_version(pe_db_conn_t *conn, const char *store_id, const char *holdout)
{
    const char *params[2] = {store_id, holdout};
    return pe_db_exec(conn,
                      "INSERT INTO flag_settings (store_id, holdout_salt, version, "
                      "holdout_percentage) VALUES ($1::uuid, $1, 1, coalesce($2::int, 5)) "
                      "ON CONFLICT (store_id) DO UPDATE SET version = flag_settings.version + 1, "
                      "holdout_percentage = coalesce($2::int, flag_settings.holdout_percentage), "
                      "updated_at = now()",
                      2, params, NULL);
}

static int record(pe_db_conn_t *conn, const change_t *c, const char *action, const cJSON *before,
                  const cJSON *after)
{
    char *b = before ? pe_json_print(before) : NULL;
    char *a = after ? pe_json_print(after) : NULL;
    int rc = PE_ENOMEM;
    if ((before && !b) || (after && !a))
        goto out;
    const char *params[6] = {c->store_id, c->key ? c->key : "", action, c->actor, b, a};
    rc = pe_db_exec(conn,
                    "INSERT INTO flag_changes (store_id, flag_key, action, actor, before, after) "
                    "VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6::jsonb)",
                    6, params, NULL);
out:
    free(b);
    free(a);
    return rc;
}

/* Writes canonical (validated) as the flag's row: INSERT when insert, else UPDATE. */
static int write_flag(pe_db_conn_t *conn, const change_t *c, bool insert, const cJSON *canon,
                      const char *salt)
{
    char *variants = pe_json_print(cJSON_GetObjectItemCaseSensitive(canon, "variants"));
    char *rules = pe_json_print(cJSON_GetObjectItemCaseSensitive(canon, "rules"));
    char rollout[16];
    int rc = PE_ENOMEM;
    if (!variants || !rules)
        goto out;
    snprintf(rollout, sizeof rollout, "%d",
             (int)cJSON_GetObjectItemCaseSensitive(canon, "rolloutPercentage")->valuedouble);
    const char *params[10] = {
        c->store_id,
        cJSON_GetObjectItemCaseSensitive(canon, "key")->valuestring,
        cJSON_GetObjectItemCaseSensitive(canon, "description")->valuestring,
        cJSON_GetObjectItemCaseSensitive(canon, "kind")->valuestring,
        variants,
        cJSON_GetObjectItemCaseSensitive(canon, "defaultVariant")->valuestring,
        rollout,
        rules,
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(canon, "enabled")) ? "true" : "false",
        salt,
    };
    pe_db_result_t *res = NULL;
    if (insert)
        rc =
            pe_db_exec(conn,
                       "INSERT INTO flags (store_id, key, description, kind, variants, "
                       "default_variant, rollout_percentage, rules, enabled, salt) VALUES "
                       "($1::uuid, $2, $3, $4, $5::jsonb, $6, $7::int, $8::jsonb, $9::boolean, $10)"
                       " ON CONFLICT (store_id, key) DO NOTHING",
                       10, params, &res);
    else
        rc = pe_db_exec(conn,
                        "UPDATE flags SET description = $3, kind = $4, variants = $5::jsonb, "
                        "default_variant = $6, rollout_percentage = $7::int, rules = $8::jsonb, "
                        "enabled = $9::boolean, version = version + 1, updated_at = now() "
                        "WHERE store_id = $1::uuid AND key = $2 AND salt = $10",
                        10, params, &res);
    if (rc == 0 && pe_db_result_affected(res) != 1)
        rc = insert ? PE_ECONFLICT : PE_ENOTFOUND;
    pe_db_result_free(res);
out:
    free(variants);
    free(rules);
    return rc;
}

static int count_flags(pe_db_conn_t *conn, const char *store_id, long *n)
{
    const char *params[1] = {store_id};
    pe_db_result_t *res = NULL;
    int rc =
        pe_db_exec(conn, "SELECT count(*) FROM flags WHERE store_id = $1::uuid", 1, params, &res);
    if (rc == 0)
        *n = strtol(pe_db_result_get(res, 0, 0), NULL, 10);
    pe_db_result_free(res);
    return rc;
}

/* The definition fields of an API-form flag (drops version, salt, timestamps). */
static void strip_meta(cJSON *j)
{
    cJSON_DeleteItemFromObjectCaseSensitive(j, "version");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "salt");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "createdAt");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "updatedAt");
}

/* The create that tx_create and tx_put share; the caller has bumped the store's version. */
static int apply_create(pe_db_conn_t *conn, change_t *c)
{
    cJSON *canon = NULL;
    int rc = pe_flags_validate(c->body, true, &canon, c->err);
    if (rc != 0)
        return rc;
    if (cJSON_GetObjectItemCaseSensitive(c->body, "version")) {
        rc = pe_refuse(c->err, PE_EINVAL, "unknown_field", "version: set by the server");
        goto out;
    }
    c->key = cJSON_GetObjectItemCaseSensitive(canon, "key")->valuestring;
    char salt[PE_FLAGS_SALT_MAX + 1];
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(canon, "salt");
    if (given)
        snprintf(salt, sizeof salt, "%s", given->valuestring);
    else
        pe_random_hex(salt, 8);
    long n = 0;
    rc = count_flags(conn, c->store_id, &n);
    if (rc == 0 && n >= PE_FLAGS_MAX_PER_STORE) {
        rc = pe_refuse(c->err, PE_EINVAL, "too_many", "flags: a store has at most 1000 flags");
        goto out;
    }
    if (rc == 0)
        rc = write_flag(conn, c, true, canon, salt);
    if (rc == PE_ECONFLICT) {
        pe_refuse(c->err, rc, "conflict", "key: a flag named '%s' exists", c->key);
    }
    if (rc == 0)
        rc = read_flag(conn, c->store_id, c->key, false, &c->result);
    if (rc == 0)
        rc = record(conn, c, "create", NULL, c->result);
out:
    if (rc != 0)
        c->key = NULL;
    cJSON_Delete(canon);
    return rc;
}

static int tx_create(pe_db_conn_t *conn, change_t *c)
{
    int rc = bump_version(conn, c->store_id, NULL);
    return rc == 0 ? apply_create(conn, c) : rc;
}

/* The update that tx_update and tx_put share: before is the flag, read under its row lock after
 * the store's version was bumped. Does not take before. */
static int apply_update(pe_db_conn_t *conn, change_t *c, const cJSON *before)
{
    cJSON *def = NULL, *canon = NULL;
    int rc = PE_EINTERNAL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->body, "version");
    const cJSON *cur_v = cJSON_GetObjectItemCaseSensitive(before, "version");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(c->body, "key");
    const cJSON *salt = cJSON_GetObjectItemCaseSensitive(c->body, "salt");
    const char *cur_salt = cJSON_GetObjectItemCaseSensitive(before, "salt")->valuestring;
    if (!cJSON_IsObject(c->body)) {
        rc = pe_refuse(c->err, PE_EINVAL, "invalid_type", "flag: must be a JSON object");
        goto out;
    }
    if (key && (!cJSON_IsString(key) || strcmp(key->valuestring, c->key) != 0)) {
        rc = pe_refuse(c->err, PE_EINVAL, "invalid_format",
                       "key: cannot be changed (it is the flag's name)");
        goto out;
    }
    if (salt && (!cJSON_IsString(salt) || strcmp(salt->valuestring, cur_salt) != 0)) {
        rc = pe_refuse(c->err, PE_EINVAL, "invalid_format",
                       "salt: cannot be changed (it would reassign every unit; create a new flag)");
        goto out;
    }
    if (v && (!cJSON_IsNumber(v) || v->valuedouble != cur_v->valuedouble)) {
        rc = pe_refuse(c->err, PE_ECONFLICT, "conflict",
                       "version: the flag is at version %.0f; read it again and retry",
                       cur_v->valuedouble);
        goto out;
    }
    if (c->partial) {
        def = cJSON_Duplicate(before, true);
        if (!def) {
            rc = PE_ENOMEM;
            goto out;
        }
        strip_meta(def);
        for (const cJSON *field = c->body->child; field; field = field->next) {
            if (strcmp(field->string, "version") == 0 || strcmp(field->string, "salt") == 0)
                continue;
            cJSON *copy = cJSON_Duplicate(field, true);
            if (!copy) {
                rc = PE_ENOMEM;
                goto out;
            }
            if (cJSON_GetObjectItemCaseSensitive(def, field->string))
                cJSON_ReplaceItemInObjectCaseSensitive(def, field->string, copy);
            else
                cJSON_AddItemToObject(def, field->string, copy);
        }
    } else {
        def = cJSON_Duplicate(c->body, true);
        if (!def) {
            rc = PE_ENOMEM;
            goto out;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(def, "version");
        cJSON_DeleteItemFromObjectCaseSensitive(def, "salt");
        if (!cJSON_GetObjectItemCaseSensitive(def, "key"))
            cJSON_AddStringToObject(def, "key", c->key);
    }
    rc = pe_flags_validate(def, false, &canon, c->err);
    if (rc == 0)
        rc = write_flag(conn, c, false, canon, cur_salt);
    if (rc == 0)
        rc = read_flag(conn, c->store_id, c->key, false, &c->result);
    if (rc == 0)
        rc = record(conn, c, "update", before, c->result);
out:
    cJSON_Delete(def);
    cJSON_Delete(canon);
    return rc;
}

static int tx_update(pe_db_conn_t *conn, change_t *c)
{
    cJSON *before = NULL;
    int rc = bump_version(conn, c->store_id, NULL);
    if (rc == 0)
        rc = read_flag(conn, c->store_id, c->key, true, &before);
    if (rc == 0)
        rc = apply_update(conn, c, before);
    cJSON_Delete(before);
    return rc;
}

/* Create, or replace the flag with the body's key (PUT: its salt kept, so every unit keeps its
 * bucket) when it is of c->replaces_kind. The version bump comes first, so the store's row lock
 * orders this against any other writer of the store's flags. */
static int tx_put(pe_db_conn_t *conn, change_t *c)
{
    cJSON *before = NULL;
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(c->body, "key");
    if (!cJSON_IsString(key)) /* let the validator name the problem */
        return tx_create(conn, c);
    int rc = bump_version(conn, c->store_id, NULL);
    if (rc == 0)
        rc = read_flag(conn, c->store_id, key->valuestring, true, &before);
    if (rc == PE_ENOTFOUND) {
        rc = apply_create(conn, c);
        goto out;
    }
    if (rc != 0)
        goto out;
    const char *kind = cJSON_GetObjectItemCaseSensitive(before, "kind")->valuestring;
    if (c->replaces_kind && strcmp(kind, c->replaces_kind) != 0) {
        rc = pe_refuse(c->err, PE_ECONFLICT, "conflict",
                       "key: a %s flag named '%.128s' exists; only %s flags can be replaced", kind,
                       key->valuestring, c->replaces_kind);
        goto out;
    }
    c->key = key->valuestring;
    c->partial = false;
    rc = apply_update(conn, c, before);
out:
    cJSON_Delete(before);
    return rc;
}

static int tx_delete(pe_db_conn_t *conn, change_t *c)
{
    cJSON *before = NULL;
    const char *params[2] = {c->store_id, c->key};
    int rc = bump_version(conn, c->store_id, NULL);
    if (rc == 0)
        rc = read_flag(conn, c->store_id, c->key, true, &before);
    if (rc == 0)
        rc = pe_db_exec(conn, "DELETE FROM flags WHERE store_id = $1::uuid AND key = $2", 2, params,
                        NULL);
    if (rc == 0)
        rc = record(conn, c, "delete", before, NULL);
    cJSON_Delete(before);
    return rc;
}

static int settings_json(pe_db_conn_t *conn, const char *store_id, cJSON **out)
{
    const char *params[1] = {store_id};
    pe_db_result_t *res = NULL;
    int rc =
        pe_db_exec(conn,
                   "SELECT json_build_object('holdoutPercentage', coalesce(fs.holdout_percentage"
                   ", 5), 'version', coalesce(fs.version, 0))::text FROM stores s LEFT JOIN "
                   "flag_settings fs ON fs.store_id = s.id WHERE s.id = $1::uuid",
                   1, params, &res);
    if (rc == 0 && pe_db_result_rows(res) != 1)
        rc = PE_ENOTFOUND;
    if (rc == 0)
        rc = pe_db_result_json(res, 0, 0, out);
    pe_db_result_free(res);
    return rc;
}

static int tx_settings(pe_db_conn_t *conn, change_t *c)
{
    cJSON *before = NULL;
    char pct[16];
    snprintf(pct, sizeof pct, "%d", c->holdout);
    int rc = settings_json(conn, c->store_id, &before);
    if (rc == 0)
        rc = bump_version(conn, c->store_id, pct);
    if (rc == 0)
        rc = settings_json(conn, c->store_id, &c->result);
    if (rc == 0)
        rc = record(conn, c, "settings", before, c->result);
    cJSON_Delete(before);
    return rc;
}

static int tx_change(pe_db_conn_t *conn, void *arg)
{
    change_t *c = arg;
    switch (c->op) {
    case OP_CREATE:
        return tx_create(conn, c);
    case OP_UPDATE:
        return tx_update(conn, c);
    case OP_PUT:
        return tx_put(conn, c);
    case OP_DELETE:
        return tx_delete(conn, c);
    case OP_SETTINGS:
        return tx_settings(conn, c);
    }
    return PE_EINTERNAL;
}

/* Runs c on conn inside the transaction that is open there (the caller's, or change()'s own):
 * the one implementation of every change. Publishes nothing. */
static int change_on(pe_db_conn_t *conn, change_t *c, cJSON **out)
{
    pe_refusal_t ignored;
    if (!c->err)
        c->err = &ignored;
    pe_refusal_clear(c->err);
    int rc = tx_change(conn, c);
    if (rc == 0 && out) {
        *out = c->result;
        c->result = NULL;
    }
    cJSON_Delete(c->result);
    c->result = NULL;
    return rc;
}

typedef struct {
    change_t *c;
    cJSON **out;
} own_tx_t;

static int own_tx(pe_db_conn_t *conn, void *arg)
{
    own_tx_t *t = arg;
    return change_on(conn, t->c, t->out);
}

/* A change in its own transaction, published after COMMIT (invariant 3). */
static int change(pe_flags_t *f, change_t *c, cJSON **out)
{
    cJSON *result = NULL;
    own_tx_t t = {c, &result};
    int rc = pe_db_tx(f->db, ACQUIRE_MS, own_tx, &t);
    if (rc == 0)
        flags_propagate(f, c->store_id);
    if (rc == 0 && out)
        *out = result;
    else
        cJSON_Delete(result);
    return rc;
}

int pe_flags_update_tx(pe_db_conn_t *conn, const char *store_id, const char *key,
                       const pe_flags_actor_t *who, const cJSON *body, bool partial, cJSON **out,
                       pe_refusal_t *err)
{
    change_t c = {.op = OP_UPDATE,
                  .store_id = store_id,
                  .key = key,
                  .actor = who->actor,
                  .body = body,
                  .partial = partial,
                  .err = err};
    *out = NULL;
    return change_on(conn, &c, out);
}

int pe_flags_put_tx(pe_db_conn_t *conn, const char *store_id, const pe_flags_actor_t *who,
                    const cJSON *def, const char *replaces_kind, cJSON **out, pe_refusal_t *err)
{
    change_t c = {.op = OP_PUT,
                  .store_id = store_id,
                  .actor = who->actor,
                  .body = def,
                  .replaces_kind = replaces_kind,
                  .err = err};
    *out = NULL;
    return change_on(conn, &c, out);
}

void pe_flags_publish(pe_flags_t *f, const char *store_id)
{
    flags_propagate(f, store_id);
}

int pe_flags_create(pe_flags_t *f, const char *store_id, const pe_flags_actor_t *who,
                    const cJSON *body, cJSON **out, pe_refusal_t *err)
{
    change_t c = {
        .op = OP_CREATE, .store_id = store_id, .actor = who->actor, .body = body, .err = err};
    *out = NULL;
    return change(f, &c, out);
}

int pe_flags_update(pe_flags_t *f, const char *store_id, const char *key,
                    const pe_flags_actor_t *who, const cJSON *body, bool partial, cJSON **out,
                    pe_refusal_t *err)
{
    change_t c = {.op = OP_UPDATE,
                  .store_id = store_id,
                  .key = key,
                  .actor = who->actor,
                  .body = body,
                  .partial = partial,
                  .err = err};
    *out = NULL;
    return change(f, &c, out);
}

int pe_flags_delete(pe_flags_t *f, const char *store_id, const char *key,
                    const pe_flags_actor_t *who)
{
    change_t c = {.op = OP_DELETE, .store_id = store_id, .key = key, .actor = who->actor};
    return change(f, &c, NULL);
}

int pe_flags_settings_get(pe_flags_t *f, const char *store_id, cJSON **out)
{
    pe_db_conn_t *conn = NULL;
    *out = NULL;
    int rc = pe_db_acquire(f->db, ACQUIRE_MS, &conn);
    if (rc == 0)
        rc = settings_json(conn, store_id, out);
    pe_db_release(f->db, conn);
    return rc;
}

int pe_flags_settings_put(pe_flags_t *f, const char *store_id, const pe_flags_actor_t *who,
                          const cJSON *body, cJSON **out, pe_refusal_t *err)
{
    change_t c = {.op = OP_SETTINGS, .store_id = store_id, .actor = who->actor, .err = err};
    *out = NULL;
    int rc = pe_flags_validate_settings(body, &c.holdout, err);
    if (rc != 0)
        return rc;
    return change(f, &c, out);
}
