/*
 * key_cache.c — publishable keys in memory, so the storefront's hot paths (event batches, flag
 * evaluations) authenticate without a database round trip, and a revoked key still stops
 * working at once on every instance.
 *
 *   lookup ──hit, fresh, listener live──▶ store id
 *      │ miss (or secret key, or listener down)
 *      ▼
 *   SELECT … FROM api_keys ──valid, publishable, generation unchanged──▶ insert
 *
 *   NOTIFY pe_api_keys '<key_hash>' (0003_api_key_changes.sql) ──▶ evict that key, generation++
 *   pe_tenancy_key_revoke_cached (this process revoked it)       ──▶ evict that key, generation++
 *   listener (re)connected or lost                               ──▶ evict all,     generation++
 *
 * Invariants:
 *  1. An entry is served only while the listener is live (pe_db_listener_live) and for at most
 *     ENTRY_TTL_US after it was read from the database (a bound even if a NOTIFY went astray).
 *  2. No stale insert: a database answer is cached only when no eviction happened between the
 *     read and the insert (the generation counter), so a revocation that commits while a lookup
 *     is in flight cannot be undone by that lookup.
 *  3. Secret keys are never cached: admin calls are rare, and their revocation is immediate by
 *     construction.
 *  4. The table holds hashes (SHA-256 hex), never keys.
 *  5. A revocation made through this process is evicted here after it commits and before the
 *     revoking call returns: the request after it is refused, with no wait for the NOTIFY.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

#define BUCKETS      1024
#define WAYS         4
#define ENTRY_TTL_US (60LL * 1000000)

typedef struct {
    char hash[TENANCY_HASH_HEX_LEN]; /* "" = empty */
    char store_id[PE_ID_LEN];
    int64_t loaded_us;
} key_entry_t;

struct pe_key_cache {
    pthread_mutex_t lock;
    uint64_t generation; /* guarded by lock: bumped by every eviction */
    key_entry_t entries[BUCKETS][WAYS];
    pe_db_listener_t *listener;
    _Atomic uint64_t hits, misses, evictions;
};

static key_entry_t *bucket_of(pe_key_cache_t *c, const char *hash)
{
    uint32_t h = 0;
    for (int i = 0; i < 8 && hash[i]; i++) /* the hash is uniform: its first hex digits do */
        h = h * 16 + (uint32_t)(hash[i] <= '9' ? hash[i] - '0' : (hash[i] | 0x20) - 'a' + 10);
    return c->entries[h % BUCKETS];
}

/* The listener's callback: payload = a changed key's hash, NULL = forget everything. */
static void on_key_change(void *arg, const char *payload)
{
    pe_key_cache_t *c = arg;
    pthread_mutex_lock(&c->lock);
    c->generation++;
    if (!payload) {
        memset(c->entries, 0, sizeof c->entries);
    } else {
        key_entry_t *b = bucket_of(c, payload);
        for (int i = 0; i < WAYS; i++)
            if (strcmp(b[i].hash, payload) == 0)
                b[i].hash[0] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_add(&c->evictions, 1);
}

pe_key_cache_t *pe_tenancy_key_cache_new(pe_db_pool_t *pool)
{
    pe_key_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->listener = pe_db_listener_start(pool, "pe_api_keys", on_key_change, c);
    if (!c->listener) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    return c;
}

void pe_tenancy_key_cache_free(pe_key_cache_t *c)
{
    if (!c)
        return;
    pe_db_listener_stop(c->listener); /* no callback runs after this */
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Copies a fresh entry's store id out; returns whether there was one. */
static bool lookup(pe_key_cache_t *c, const char *hash, int64_t now, char store_id[PE_ID_LEN],
                   uint64_t *generation)
{
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    key_entry_t *b = bucket_of(c, hash);
    for (int i = 0; i < WAYS && !hit; i++) {
        if (b[i].hash[0] && now - b[i].loaded_us < ENTRY_TTL_US && strcmp(b[i].hash, hash) == 0) {
            memcpy(store_id, b[i].store_id, PE_ID_LEN);
            hit = true;
        }
    }
    *generation = c->generation;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void insert(pe_key_cache_t *c, const char *hash, const char *store_id, int64_t loaded_us,
                   uint64_t generation)
{
    pthread_mutex_lock(&c->lock);
    if (c->generation == generation) { /* invariant 2 */
        key_entry_t *b = bucket_of(c, hash), *victim = &b[0];
        for (int i = 0; i < WAYS; i++) {
            if (!b[i].hash[0] || strcmp(b[i].hash, hash) == 0) {
                victim = &b[i];
                break;
            }
            if (b[i].loaded_us < victim->loaded_us)
                victim = &b[i];
        }
        memcpy(victim->hash, hash, TENANCY_HASH_HEX_LEN);
        memcpy(victim->store_id, store_id, PE_ID_LEN);
        victim->loaded_us = loaded_us;
    }
    pthread_mutex_unlock(&c->lock);
}

int pe_tenancy_key_authenticate_cached(pe_key_cache_t *c, pe_db_pool_t *pool, const char *key,
                                       char store_id[PE_ID_LEN], pe_key_kind_t *kind)
{
    pe_key_kind_t tagged = PE_KEY_PUBLISHABLE;
    char hash[TENANCY_HASH_HEX_LEN];
    store_id[0] = '\0';
    if (!tenancy_key_well_formed(key, &tagged))
        return PE_EUNAUTH;
    tenancy_hash_hex(key, TENANCY_KEY_STRLEN, hash);
    bool cacheable = c && tagged == PE_KEY_PUBLISHABLE && pe_db_listener_live(c->listener);
    if (!cacheable) /* invariants 1 and 3 */
        return tenancy_key_lookup(pool, hash, tagged, store_id, kind);

    int64_t now = pe_now_mono_us();
    uint64_t generation;
    if (lookup(c, hash, now, store_id, &generation)) {
        atomic_fetch_add(&c->hits, 1);
        *kind = PE_KEY_PUBLISHABLE;
        return 0;
    }
    atomic_fetch_add(&c->misses, 1);
    int rc = tenancy_key_lookup(pool, hash, tagged, store_id, kind);
    if (rc == 0 && *kind == PE_KEY_PUBLISHABLE)
        insert(c, hash, store_id, now, generation);
    return rc;
}

int pe_tenancy_key_revoke_cached(pe_key_cache_t *c, pe_db_pool_t *pool, const char *store_id,
                                 const char *key_id, pe_key_info_t *out)
{
    char hash[TENANCY_HASH_HEX_LEN];
    int rc = tenancy_key_revoke(pool, store_id, key_id, hash, out);
    /* After the commit (invariant 5); the generation bump also stops a lookup that read the
     * row before the commit from caching it (invariant 2). */
    if (rc == 0 && c)
        on_key_change(c, hash);
    return rc;
}

void pe_tenancy_key_cache_stats(pe_key_cache_t *c, pe_key_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->evictions = atomic_load(&c->evictions);
    out->live = pe_db_listener_live(c->listener);
}
