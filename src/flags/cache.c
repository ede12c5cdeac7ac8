/*
 * cache.c — every store's flag set in memory, kept fresh from Redis and PostgreSQL (ARCH-15):
 *
 *   evaluation ──rdlock, ref, unlock──▶ the store's set (immutable)        no I/O when warm
 *      │ not cached
 *      ▼
 *   flags_load: GET pe:{S}:flags ──ok──▶ compile ──▶ flags_install (wrlock: swap a pointer)
 *      │ absent / Redis down / older than wanted
 *      ▼
 *   PostgreSQL (one statement builds the set JSON) ──▶ compile ──▶ SET pe:{S}:flags (repair)
 *
 *   who refreshes           when                                  staleness
 *   the admin request       after its COMMIT (flags_propagate)    0 on this instance
 *   SUBSCRIBE thread        "<S> <version>" on pe:flags:invalidate  ~ms on every instance
 *   (re)subscription        fn(NULL): every cached store reloaded  after a Redis outage
 *   PostgreSQL poll         every poll_ms (1 s): flag_settings.version of the cached stores;
 *                           a newer version reloads (Redis if it has it, else PostgreSQL)
 *                                                                  ≤ poll_ms + a load, Redis down
 *
 * Invariants:
 *  1. An evaluation holds the map's read lock only to take a reference; loads and compiles
 *     happen outside every lock, and a refresh holds the write lock only to swap one pointer.
 *  2. A store's copy never goes back to an older version (flags_install compares versions).
 *  3. When Redis is down the last good copy keeps serving; the poll reads PostgreSQL only, so a
 *     change committed while Redis is down reaches every instance within poll_ms + one load.
 *  4. The refresher and the subscriber are the only threads this module starts; both stop in
 *     pe_flags_free before anything they use is freed.
 *  5. A set with quarantined flags (engine.c, invariant 4) is a good set: it is installed like
 *     any other, so the poll has nothing to retry, and its quarantined flags are logged once,
 *     when it is installed (flags_install), and counted on /metrics while it is cached.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags/flags_internal.h"

#define SUBSCRIBE_TIMEOUT_MS 1000
#define DEFAULT_POLL_MS      1000

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of store_id, or the empty slot where it would go. Caller holds the lock. */
static flags_entry_t **slot_of(pe_flags_t *f, const char *store_id)
{
    size_t mask = f->nslots - 1, i = (size_t)str_hash(store_id) & mask;
    while (f->slots[i] && strcmp(f->slots[i]->store_id, store_id) != 0)
        i = (i + 1) & mask;
    return &f->slots[i];
}

/* Doubles the table. Caller holds the write lock. */
static int grow(pe_flags_t *f)
{
    size_t n = f->nslots * 2;
    flags_entry_t **old = f->slots, **slots = calloc(n, sizeof *slots);
    if (!slots)
        return PE_ENOMEM;
    size_t oldn = f->nslots;
    f->slots = slots;
    f->nslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i])
            *slot_of(f, old[i]->store_id) = old[i];
    free(old);
    return 0;
}

pe_flag_set_t *flags_install(pe_flags_t *f, const char *store_id, pe_flag_set_t *set)
{
    pe_flag_set_t *old = NULL, *current;
    pthread_rwlock_wrlock(&f->lock);
    flags_entry_t **slot = slot_of(f, store_id);
    if (!*slot && (f->nentries + 1) * 2 > f->nslots) {
        if (grow(f) == 0)
            slot = slot_of(f, store_id);
    }
    if (!*slot && (f->nentries + 1) * 2 <= f->nslots) {
        flags_entry_t *e = calloc(1, sizeof *e);
        if (e) {
            snprintf(e->store_id, sizeof e->store_id, "%s", store_id);
            *slot = e;
            f->nentries++;
        }
    }
    flags_entry_t *e = *slot;
    if (!e) { /* ENOMEM: serve the new set to this caller without caching it */
        pthread_rwlock_unlock(&f->lock);
        flags_log_quarantine(set);
        return set;
    }
    bool installed = false;
    if (!e->set || set->version >= e->set->version) { /* invariant 2 */
        old = e->set;
        e->set = set;
        set = NULL;
        installed = true;
    }
    atomic_store(&e->force, false);
    current = pe_flags_set_ref(e->set);
    pthread_rwlock_unlock(&f->lock);
    if (installed) /* invariant 5: once per load, outside the lock */
        flags_log_quarantine(current);
    pe_flags_set_release(old);
    pe_flags_set_release(set);
    return current;
}

int flags_redis_key(const char *store_id, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "pe:{%s}:flags", store_id);
    return n > 0 && (size_t)n < outlen ? n : -1;
}

int flags_load(pe_flags_t *f, const char *store_id, uint64_t min_version, bool use_redis,
               pe_flag_set_t **out)
{
    char key[128];
    int klen = flags_redis_key(store_id, key, sizeof key);
    bool redis_stale = false;
    *out = NULL;
    if (klen < 0)
        return PE_EINVAL;
    if (use_redis && f->redis) {
        char *json = NULL;
        size_t len = 0;
        int rc = pe_redis_get(f->redis, key, (size_t)klen, &json, &len);
        if (rc == 0) {
            pe_flag_set_t *s = pe_flags_set_from_json(json, len);
            if (s && s->version >= min_version && strcmp(s->store_id, store_id) == 0) {
                free(json);
                atomic_fetch_add(&f->loads_redis, 1);
                *out = s;
                return 0;
            }
            pe_flags_set_release(s);
            redis_stale = true;
        } else if (rc == PE_ENOTFOUND) {
            redis_stale = true;
        }
        free(json);
    }
    char *json = NULL;
    size_t len = 0;
    int rc = flags_load_pg_json(f, store_id, &json, &len);
    if (rc != 0) {
        atomic_fetch_add(&f->load_failures, 1);
        return rc;
    }
    pe_flag_set_t *s = pe_flags_set_from_json(json, len);
    if (!s) {
        free(json);
        atomic_fetch_add(&f->load_failures, 1);
        return PE_EINTERNAL;
    }
    atomic_fetch_add(&f->loads_pg, 1);
    if (redis_stale) /* repair the read path for the next cold reader */
        pe_redis_set(f->redis, key, (size_t)klen, json, len, 0);
    free(json);
    *out = s;
    return 0;
}

int pe_flags_acquire(pe_flags_t *f, const char *store_id, pe_flag_set_t **out)
{
    pe_flag_set_t *s = NULL;
    pthread_rwlock_rdlock(&f->lock);
    flags_entry_t *e = *slot_of(f, store_id);
    if (e && e->set)
        s = pe_flags_set_ref(e->set);
    pthread_rwlock_unlock(&f->lock);
    if (s) {
        *out = s;
        return 0;
    }
    int rc = flags_load(f, store_id, 0, true, &s);
    if (rc != 0) {
        *out = NULL;
        return rc;
    }
    *out = flags_install(f, store_id, s);
    return 0;
}

void pe_flags_count(pe_flags_t *f, size_t evaluations)
{
    atomic_fetch_add_explicit(&f->evaluations, evaluations, memory_order_relaxed);
}

int64_t pe_flags_cached_version(pe_flags_t *f, const char *store_id)
{
    int64_t v = -1;
    pthread_rwlock_rdlock(&f->lock);
    flags_entry_t *e = *slot_of(f, store_id);
    if (e && e->set)
        v = (int64_t)e->set->version;
    pthread_rwlock_unlock(&f->lock);
    return v;
}

/* ---- the refresher ----------------------------------------------------------------------- */

static void wake(pe_flags_t *f)
{
    pthread_mutex_lock(&f->wake_mu);
    f->wake = true;
    pthread_cond_signal(&f->wake_cv);
    pthread_mutex_unlock(&f->wake_mu);
}

/* The subscriber's callback: "<storeId> <version>", or NULL after a (re)subscription. */
static void on_message(void *arg, const char *channel, const char *msg, size_t len)
{
    pe_flags_t *f = arg;
    if (!channel) {
        atomic_fetch_add(&f->resyncs, 1);
        pthread_rwlock_rdlock(&f->lock);
        for (size_t i = 0; i < f->nslots; i++)
            if (f->slots[i])
                atomic_store(&f->slots[i]->force, true);
        pthread_rwlock_unlock(&f->lock);
        wake(f);
        return;
    }
    char store[64];
    size_t n = 0;
    while (n < len && n + 1 < sizeof store && msg[n] != ' ') {
        store[n] = msg[n];
        n++;
    }
    store[n] = '\0';
    if (n == len || msg[n] != ' ')
        return;
    uint64_t version = strtoull(msg + n + 1, NULL, 10);
    atomic_fetch_add(&f->invalidations, 1);
    bool found = false;
    pthread_rwlock_rdlock(&f->lock);
    flags_entry_t *e = *slot_of(f, store);
    if (e) { /* a store nobody asked this instance about stays uncached */
        uint64_t want = atomic_load(&e->want);
        while (want < version && !atomic_compare_exchange_weak(&e->want, &want, version))
            ;
        found = true;
    }
    pthread_rwlock_unlock(&f->lock);
    if (found)
        wake(f);
}

typedef struct {
    char store_id[64];
    uint64_t want;
    bool force;
} todo_t;

/* The stores whose copy is behind what was announced (or all, for a resync). */
static size_t collect(pe_flags_t *f, todo_t **out, bool all)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&f->lock);
    todo_t *t = calloc(f->nentries ? f->nentries : 1, sizeof *t);
    for (size_t i = 0; t && i < f->nslots; i++) {
        flags_entry_t *e = f->slots[i];
        if (!e)
            continue;
        uint64_t have = e->set ? e->set->version : 0;
        bool force = atomic_load(&e->force);
        if (all || force || atomic_load(&e->want) > have) {
            snprintf(t[n].store_id, sizeof t[n].store_id, "%s", e->store_id);
            t[n].want = atomic_load(&e->want);
            t[n].force = force;
            n++;
        }
    }
    pthread_rwlock_unlock(&f->lock);
    *out = t;
    return n;
}

static void reload(pe_flags_t *f, const todo_t *t)
{
    pe_flag_set_t *s = NULL;
    if (flags_load(f, t->store_id, t->want, true, &s) == 0)
        pe_flags_set_release(flags_install(f, t->store_id, s));
}

/* Reads flag_settings.version for every cached store and marks the ones behind. */
static void poll_versions(pe_flags_t *f)
{
    pe_buf_t ids = PE_BUF_INIT;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    int rc = pe_buf_puts(&ids, "{");
    pthread_rwlock_rdlock(&f->lock);
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < f->nslots; i++)
        if (f->slots[i])
            rc = pe_buf_printf(&ids, "%s%s", n++ ? "," : "", f->slots[i]->store_id);
    pthread_rwlock_unlock(&f->lock);
    if (rc != 0 || n == 0 || pe_buf_puts(&ids, "}") != 0)
        goto out;
    atomic_fetch_add(&f->polls, 1);
    if (pe_db_acquire(f->db, 500, &conn) != 0)
        goto failed;
    const char *params[1] = {ids.data};
    if (pe_db_exec(conn,
                   "SELECT s.id::text, coalesce(fs.version, 0) FROM unnest($1::uuid[]) AS s(id)"
                   " LEFT JOIN flag_settings fs ON fs.store_id = s.id",
                   1, params, &res) != 0)
        goto failed;
    pthread_rwlock_rdlock(&f->lock);
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        flags_entry_t *e = *slot_of(f, pe_db_result_get(res, r, 0));
        uint64_t v = strtoull(pe_db_result_get(res, r, 1), NULL, 10);
        if (!e)
            continue;
        uint64_t want = atomic_load(&e->want);
        while (want < v && !atomic_compare_exchange_weak(&e->want, &want, v))
            ;
    }
    pthread_rwlock_unlock(&f->lock);
    goto out;
failed:
    atomic_fetch_add(&f->poll_failures, 1);
out:
    pe_db_result_free(res);
    pe_db_release(f->db, conn);
    pe_buf_free(&ids);
}

static void *refresher_main(void *arg)
{
    pe_flags_t *f = arg;
    int64_t next_poll = pe_now_mono_us() + (int64_t)f->poll_ms * 1000;
    for (;;) {
        pthread_mutex_lock(&f->wake_mu);
        while (!f->wake && !f->stopping) {
            int64_t wait_us = next_poll - pe_now_mono_us();
            if (wait_us <= 0)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (wait_us % 1000000) * 1000;
            ts.tv_sec += wait_us / 1000000 + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&f->wake_cv, &f->wake_mu, &ts);
        }
        bool stopping = f->stopping;
        f->wake = false;
        pthread_mutex_unlock(&f->wake_mu);
        if (stopping)
            break;
        if (pe_now_mono_us() >= next_poll) {
            poll_versions(f);
            next_poll = pe_now_mono_us() + (int64_t)f->poll_ms * 1000;
        }
        todo_t *t = NULL;
        size_t n = collect(f, &t, false);
        for (size_t i = 0; i < n; i++)
            reload(f, &t[i]);
        free(t);
    }
    return NULL;
}

pe_flags_t *pe_flags_new(const pe_flags_config_t *cfg)
{
    pe_flags_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->db = cfg->db;
    f->redis = cfg->redis;
    f->collector = cfg->collector;
    f->poll_ms = cfg->poll_ms ? cfg->poll_ms : DEFAULT_POLL_MS;
    f->nslots = 64;
    f->slots = calloc(f->nslots, sizeof *f->slots);
    f->dedupe = calloc(FLAGS_DEDUPE_SLOTS, sizeof *f->dedupe);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_rwlock_init(&f->lock, NULL);
    pthread_mutex_init(&f->wake_mu, NULL);
    pthread_cond_init(&f->wake_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!f->slots || !f->dedupe)
        goto fail;
    if (cfg->start_threads) {
        if (pthread_create(&f->refresher, NULL, refresher_main, f) != 0)
            goto fail;
        f->started = true;
        if (cfg->redis_url) {
            f->sub = pe_redis_subscribe(cfg->redis_url, SUBSCRIBE_TIMEOUT_MS, PE_FLAGS_CHANNEL,
                                        on_message, f);
            if (!f->sub)
                goto fail;
        }
    }
    return f;
fail:
    pe_flags_free(f);
    return NULL;
}

void pe_flags_free(pe_flags_t *f)
{
    if (!f)
        return;
    pe_redis_subscriber_stop(f->sub); /* invariant 4: no callback after this */
    if (f->started) {
        pthread_mutex_lock(&f->wake_mu);
        f->stopping = true;
        pthread_cond_signal(&f->wake_cv);
        pthread_mutex_unlock(&f->wake_mu);
        pthread_join(f->refresher, NULL);
    }
    for (size_t i = 0; f->slots && i < f->nslots; i++) {
        if (f->slots[i]) {
            pe_flags_set_release(f->slots[i]->set);
            free(f->slots[i]);
        }
    }
    free(f->slots);
    free((void *)f->dedupe);
    pthread_rwlock_destroy(&f->lock);
    pthread_mutex_destroy(&f->wake_mu);
    pthread_cond_destroy(&f->wake_cv);
    free(f);
}

int pe_flags_metrics(pe_flags_t *f, pe_buf_t *out)
{
#define C(x) (unsigned long long)atomic_load(&f->x)
    pthread_rwlock_rdlock(&f->lock);
    size_t stores = f->nentries, quarantined = 0;
    for (size_t i = 0; i < f->nslots; i++)
        if (f->slots[i] && f->slots[i]->set)
            quarantined += f->slots[i]->set->nquarantined;
    pthread_rwlock_unlock(&f->lock);
    return pe_buf_printf(
        out,
        "# HELP pe_flags_evaluations_total Flag evaluations answered (OFREP).\n"
        "# TYPE pe_flags_evaluations_total counter\n"
        "pe_flags_evaluations_total %llu\n"
        "# HELP pe_flags_cached_stores Stores whose flag set is held in memory.\n"
        "# TYPE pe_flags_cached_stores gauge\n"
        "pe_flags_cached_stores %zu\n"
        "# HELP pe_flags_quarantined Flags of the cached sets whose stored definition does not "
        "compile: answered as errors (or left out without a usable key) until fixed; the log "
        "names them (flags_quarantined).\n"
        "# TYPE pe_flags_quarantined gauge\n"
        "pe_flags_quarantined %zu\n"
        "# HELP pe_flags_loads_total Flag-set loads by source (cold misses and refreshes).\n"
        "# TYPE pe_flags_loads_total counter\n"
        "pe_flags_loads_total{source=\"redis\"} %llu\n"
        "pe_flags_loads_total{source=\"postgres\"} %llu\n"
        "pe_flags_loads_total{source=\"failed\"} %llu\n"
        "# HELP pe_flags_publishes_total Changes written to Redis and announced, or not.\n"
        "# TYPE pe_flags_publishes_total counter\n"
        "pe_flags_publishes_total{result=\"ok\"} %llu\n"
        "pe_flags_publishes_total{result=\"failed\"} %llu\n"
        "# HELP pe_flags_invalidations_total Invalidations heard on " PE_FLAGS_CHANNEL ".\n"
        "# TYPE pe_flags_invalidations_total counter\n"
        "pe_flags_invalidations_total %llu\n"
        "# HELP pe_flags_resyncs_total Full resynchronisations after a (re)subscription.\n"
        "# TYPE pe_flags_resyncs_total counter\n"
        "pe_flags_resyncs_total %llu\n"
        "# HELP pe_flags_subscriber_live 1 while subscribed to the invalidation channel.\n"
        "# TYPE pe_flags_subscriber_live gauge\n"
        "pe_flags_subscriber_live %d\n"
        "# HELP pe_flags_polls_total PostgreSQL version polls, and those that failed.\n"
        "# TYPE pe_flags_polls_total counter\n"
        "pe_flags_polls_total{result=\"ok\"} %llu\n"
        "pe_flags_polls_total{result=\"failed\"} %llu\n"
        "# HELP pe_flags_exposures_total Exposure events: sent to the collector, deduplicated in "
        "memory, dropped (queue full), skipped (unit unusable as an id), stored, failed.\n"
        "# TYPE pe_flags_exposures_total counter\n"
        "pe_flags_exposures_total{result=\"sent\"} %llu\n"
        "pe_flags_exposures_total{result=\"deduplicated\"} %llu\n"
        "pe_flags_exposures_total{result=\"dropped\"} %llu\n"
        "pe_flags_exposures_total{result=\"skipped\"} %llu\n"
        "pe_flags_exposures_total{result=\"stored\"} %llu\n"
        "pe_flags_exposures_total{result=\"failed\"} %llu\n",
        C(evaluations), stores, quarantined, C(loads_redis), C(loads_pg), C(load_failures),
        C(publishes), C(publish_failures), C(invalidations), C(resyncs),
        pe_redis_subscriber_live(f->sub) ? 1 : 0, C(polls) - C(poll_failures), C(poll_failures),
        C(exp_sent), C(exp_deduped), C(exp_dropped), C(exp_skipped), C(exp_stored), C(exp_failed));
#undef C
}
