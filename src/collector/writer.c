/*
 * writer.c — the group-commit writers: threads (2 by default) that each gather the batches of
 * many requests for a few milliseconds and store them with one COPY per transaction, then tell
 * every request its outcome. With two, one gathers and stores while the other waits for its
 * COMMIT's fsync.
 *
 *    ingest() ──enqueue──▶ [queue] ──oldest waited window_ms──▶ take ≤ max_commit_events
 *                                                           │
 *     BEGIN; COPY keys → event_keys; COPY events (binary)   (every key new: the rule)
 *            └─ unique violation (a retry) → ROLLBACK; BEGIN; INSERT keys ON CONFLICT
 *               DO NOTHING RETURNING; COPY the events whose key came back
 *            COPY events_rejected; COMMIT
 *   (first, set_config('pe.received_from'): the commit's least received_at, which the events
 *    trigger logs in event_commits for the aggregation job — 0009_event_commits.sql)
 *   (imported events have no event_keys row: events' own primary key, with the timestamp as
 *    sent, is their idempotency key; the fallback looks them up there)
 *                                                           │
 *                         ok ──▶ done(rc = 0) for each job  │  error ──▶ ROLLBACK,
 *                                                           │  done(rc = PE_EUNAVAIL)
 *                 connection lost before COMMIT was sent ──▶ the whole commit once more, on a
 *                                                            new connection (invariant 7)
 *
 *   state       function         what happens
 *   idle        writer_main()    waits on the queue's condition variable
 *   gathering   take_jobs()      lets requests join until the oldest waited window_ms, takes them
 *   committing  commit_jobs()    one transaction for every taken job (store_jobs), at most twice
 *   answering   finish_jobs()    done() per job, outside the lock, after COMMIT or ROLLBACK
 *
 * Invariants:
 *  1. done(rc = 0) only after COMMIT returned success (nothing acknowledged is lost).
 *  2. The queue never holds more than queue_max_events events; beyond that ingest is refused
 *     (the HTTP layer answers 503 with Retry-After) instead of growing memory. Once it holds
 *     store_queue_pct % of that, a store already holding that much is refused too: one store
 *     flooding cannot take the room the others need (each store's waiting events are counted
 *     in a small chained table, an entry only while the store has events queued).
 *  3. Dead letters beyond dead_letters_per_store_hour are counted in events_rejected_overflow
 *     instead of stored, so a flood of garbage cannot fill the disk.
 *  4. Each writer holds one connection while it works; on any error it hands it back (rolled
 *     back) and takes one again for the next commit. Writers lock shared keys in sorted order,
 *     so two commits carrying the same event cannot deadlock: the second waits for the first
 *     and then finds the key taken. For live events that order is event_keys' (the same event
 *     meets its twin there first), so their rows may follow in job order, each job's COPY text
 *     sent whole; imports, keyed by events itself, go row by row in key order.
 *  5. Idempotency costs a COPY of three narrow columns when no key was seen before (the common
 *     case: retries are rare), and a second transaction only for the commit that meets a stored
 *     key (never a savepoint: every row keeps a top-level xmin, which the aggregation's snapshot
 *     watermark needs): then the keys go to event_keys as three arrays (ON CONFLICT DO NOTHING
 * RETURNING) and only the lines whose key came back new are streamed to events. A key twice in one
 * commit (a retry racing its original) is found by sorting and stored once on either path.
 *  6. Every writer runs until pe_collector_stop: one that finds the queue emptied by another
 *     writer waits again (pe_collector_stats().writers_running counts them).
 *  7. A PostgreSQL restart costs no request. The held connection is checked before each commit
 *     (pe_db_conn_check), so one the server closed while the writer waited is replaced first;
 *     and a commit whose connection is lost (pe_db_conn_lost) before its COMMIT was sent is done
 *     once more on a new connection: the server rolled the first try back, nothing of it is
 *     stored. Once COMMIT was sent the outcome is unknown and never retried here: the requests
 *     get 503, and their own retry is safe (idempotency keys). Only a second loss, or no
 *     connection at all (PostgreSQL really down), answers 503.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector_internal.h"

#define ACQUIRE_TIMEOUT_MS 2000
#define DL_SLOTS           1024
#define SLOW_COMMIT_US     250000 /* a commit slower than this is logged with where time went */

#define MAX_WRITERS 8

#define ENSURED_SLOTS  512
#define ENSURED_TTL_US (3600LL * 1000000) /* re-check a day's partitions after an hour */
/* The lock `profit-engine maintain` holds (maintain.c): partitions are made by one at a time. */
#define PARTITIONS_LOCK_KEY "7262937150124823901"

/* A UTC day whose events partitions were made sure of, and when. */
typedef struct {
    int32_t day;
    int64_t at_us; /* 0 = empty slot */
} ensured_day_t;

typedef struct {
    char store_id[PE_EVENT_ID_MAX + 1];
    int64_t hour;
    size_t stored;
} dead_letter_slot_t;

/* One writer thread and the connection it holds while it works. */
typedef struct {
    pe_collector_t *c;
    pthread_t thread;
    pe_db_conn_t *conn;
} writer_t;

/* A store's events in the queue (invariant 2); in the table while count > 0. */
struct store_share {
    struct store_share *next;
    char store_id[PE_EVENT_ID_MAX + 1];
    size_t queued;
};
#define SHARE_BUCKETS 256

struct pe_collector {
    pe_collector_config_t cfg;
    struct store_share *shares[SHARE_BUCKETS]; /* guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    collector_job_t *head, *tail;
    size_t queued_events;
    bool stopping;
    bool joined; /* pe_collector_stop has joined (or is joining) the writers */
    unsigned nwriters;
    writer_t writers[MAX_WRITERS];
    pthread_mutex_t dl_lock;
    dead_letter_slot_t dl[DL_SLOTS];  /* guarded by dl_lock */
    _Atomic unsigned writers_running; /* writer threads in their loop */
    _Atomic uint64_t batches, stored, duplicates, rejected, commits, failures, queue_full;
    _Atomic uint64_t store_share_full; /* refused by invariant 2's per-store share */
    _Atomic uint64_t commit_us;        /* time spent in successful commits */
    _Atomic uint64_t slow_paths;       /* commits that met a stored key and took the fallback */
    _Atomic uint64_t phase_us[3];      /* of which: keys, rows (events + dead letters), COMMIT */
    pthread_mutex_t days_lock;
    ensured_day_t ensured[ENSURED_SLOTS]; /* guarded by days_lock */
};

/* Inserts the commit's keys; returns those that were new (see 0002_events.sql invariant 2). */
static const char KEYS_SQL[] = "INSERT INTO event_keys (store_id, key_day, event_id)"
                               " SELECT * FROM unnest($1::uuid[], $2::date[], $3::uuid[])"
                               " ON CONFLICT DO NOTHING RETURNING store_id, key_day, event_id";

/* $1: the first and last second (Unix time) of each UTC day an import needs, so that every
 * partition overlapping those days is made whatever time zone pg_partman cut them in. Without
 * p_analyze => false pg_partman ANALYZEs the whole parent after each creation: seconds per new
 * day once a few million events are stored (autovacuum analyzes the new partition instead). */
static const char PARTITIONS_SQL[] =
    "SELECT partman.create_partition_time('public.events', t, p_analyze => false)"
    " FROM (SELECT array_agg(to_timestamp(s)) AS t FROM unnest($1::bigint[]) AS s) a";

static const char OVERFLOW_SQL[] =
    "INSERT INTO events_rejected_overflow (store_id, hour, dropped)"
    " VALUES ($1, to_timestamp($2::bigint), $3::bigint)"
    " ON CONFLICT (store_id, hour) DO UPDATE"
    " SET dropped = events_rejected_overflow.dropped + EXCLUDED.dropped";

/* The chain of store_id's bucket. */
static struct store_share **bucket_of(pe_collector_t *c, const char *store_id)
{
    uint32_t h = 2166136261u; /* FNV-1a: store ids are ours, not a client's choice */
    for (const char *p = store_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &c->shares[h % SHARE_BUCKETS];
}

/* The queue entry of store_id, created when create (NULL when out of memory or absent). */
static struct store_share *share_of(pe_collector_t *c, const char *store_id, bool create)
{
    struct store_share **b = bucket_of(c, store_id);
    for (struct store_share *s = *b; s; s = s->next)
        if (strcmp(s->store_id, store_id) == 0)
            return s;
    struct store_share *s = create ? calloc(1, sizeof *s) : NULL;
    if (s) {
        snprintf(s->store_id, sizeof s->store_id, "%s", store_id);
        s->next = *b;
        *b = s;
    }
    return s;
}

/* A job left the queue: its store holds that much less; the entry goes at 0. Under lock. */
static void share_release(pe_collector_t *c, collector_job_t *job, size_t size)
{
    struct store_share *s = job->share;
    job->share = NULL;
    if (!s || (s->queued -= size) > 0)
        return;
    for (struct store_share **q = bucket_of(c, s->store_id); *q; q = &(*q)->next)
        if (*q == s) {
            *q = s->next;
            free(s);
            return;
        }
}

int collector_enqueue(pe_collector_t *c, collector_job_t *job)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    size_t size = job->nevents + job->nrejects;
    size_t fair = c->cfg.queue_max_events / 100 * c->cfg.store_queue_pct +
                  c->cfg.queue_max_events % 100 * c->cfg.store_queue_pct / 100;
    struct store_share *mine = share_of(c, job->store_id, false);
    bool over_share = mine && c->cfg.store_queue_pct < 100 && mine->queued + size > fair &&
                      c->queued_events + size > fair;
    bool full = c->stopping || c->queued_events + size > c->cfg.queue_max_events;
    if (full || over_share) {
        atomic_fetch_add(full ? &c->queue_full : &c->store_share_full, 1);
        rc = PE_EUNAVAIL;
    } else if (!(job->share = mine ? mine : share_of(c, job->store_id, true))) {
        rc = PE_ENOMEM;
    } else {
        job->share->queued += size;
        if (c->tail)
            c->tail->next = job;
        else
            c->head = job;
        c->tail = job;
        job->queued_us = pe_now_mono_us();
        c->queued_events += size;
        pthread_cond_signal(&c->wake);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void add_us(struct timespec *ts, int64_t us)
{
    ts->tv_nsec += (long)(us % 1000000) * 1000L;
    ts->tv_sec += (time_t)(us / 1000000) + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* Waits for work, lets more join until the oldest queued job has waited window_ms (no wait at
 * all when it already has: it queued while the writers were busy), takes up to
 * max_commit_events. Another writer may take everything meanwhile: then it waits again. Returns
 * NULL only when stopping with an empty queue. */
static collector_job_t *take_jobs(pe_collector_t *c)
{
    collector_job_t *taken = NULL, **tailp = &taken;
    size_t events = 0;
    pthread_mutex_lock(&c->lock);
    while (!taken) {
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (!c->head)
            break; /* stopping, nothing left */
        int64_t due_us = c->head->queued_us + (int64_t)c->cfg.window_ms * 1000;
        while (c->head && !c->stopping && c->queued_events < c->cfg.max_commit_events) {
            int64_t left_us = due_us - pe_now_mono_us();
            if (left_us <= 0)
                break;
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            add_us(&deadline, left_us);
            pthread_cond_timedwait(&c->wake, &c->lock, &deadline);
        }
        while (c->head) {
            collector_job_t *j = c->head;
            size_t size = j->nevents + j->nrejects;
            if (taken && events + size > c->cfg.max_commit_events)
                break;
            c->head = j->next;
            if (!c->head)
                c->tail = NULL;
            j->next = NULL;
            *tailp = j;
            tailp = &j->next;
            events += size;
            c->queued_events -= size;
            share_release(c, j, size);
        }
    }
    if (c->head)
        pthread_cond_signal(&c->wake); /* more than one commit's worth: another writer's turn */
    pthread_mutex_unlock(&c->lock);
    return taken;
}

static dead_letter_slot_t *dl_slot(pe_collector_t *c, const char *store_id, int64_t hour)
{
    uint32_t h = 2166136261u;
    for (const char *p = store_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    dead_letter_slot_t *s = &c->dl[h % DL_SLOTS];
    if (strcmp(s->store_id, store_id) != 0 || s->hour != hour) {
        /* a new hour or another store in this slot: start counting again (a collision only
         * makes the bound reset early, never lose a count already written) */
        snprintf(s->store_id, sizeof s->store_id, "%s", store_id);
        s->hour = hour;
        s->stored = 0;
    }
    return s;
}

static void drop_connection(writer_t *w)
{
    pe_db_release(w->c->cfg.db, w->conn); /* rolls back an open transaction */
    w->conn = NULL;
}

/* The connection for the next commit: the held one, checked (invariant 7), or a new one. */
static int ensure_connection(writer_t *w)
{
    if (w->conn) {
        int rc = pe_db_conn_check(w->conn);
        if (rc != 0)
            drop_connection(w);
        return rc;
    }
    return pe_db_acquire(w->c->cfg.db, ACQUIRE_TIMEOUT_MS, &w->conn);
}

/* One event of a commit, for sorting by key. */
typedef struct {
    const collector_job_t *job;
    const collector_row_t *row;
    bool import;    /* keyed by events' own primary key, not by event_keys */
    bool duplicate; /* the same key as the one before it (sorted): stored at most once */
    bool fresh;     /* fallback path: its key came back from the conflict-aware insert */
} key_ref_t;

/* Orders a ref against a key given as text (as PostgreSQL returns it). */
static int key_cmp(const key_ref_t *r, const char *store, const char *day, const char *id)
{
    int d = strcmp(r->job->store_id, store);
    if (d == 0)
        d = strncmp(r->row->key_day, day, 10);
    if (d == 0)
        d = strncmp(r->row->event_id, id, PE_EVENT_UUID_LEN);
    return d;
}

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref_t *x = a, *y = b;
    int d = strcmp(x->job->store_id, y->job->store_id);
    if (d == 0)
        d = memcmp(x->row->key_day, y->row->key_day, 10);
    if (d == 0)
        d = memcmp(x->row->event_id, y->row->event_id, PE_EVENT_UUID_LEN);
    return d;
}

/* The fast path: every key of the commit is new (the rule: retries are rare). The keys go to
 * event_keys with COPY and the events after them; a key stored before makes the key COPY fail
 * with a unique violation, and the caller does the commit again with insert_new_events. */
static int copy_new_events(writer_t *w, const collector_job_t *jobs, const key_ref_t *refs,
                           size_t n, uint64_t *inserted)
{
    pe_buf_t keys = PE_BUF_INIT;
    int rc = 0;
    /* Every row of every job goes in (the rule: live traffic, no key twice): then the events
     * go job by job, whole. Otherwise row by row in key order, skipping the repeats; imports
     * too, whose only lock order is the events key itself (invariant 4). */
    bool whole_jobs = true;
    for (size_t k = 0; k < n; k++) {
        if (refs[k].duplicate || refs[k].import) {
            whole_jobs = false;
            continue;
        }
        rc |= pe_buf_puts(&keys, refs[k].job->store_id);
        rc |= pe_buf_append(&keys, "\t", 1);
        rc |= pe_buf_append(&keys, refs[k].row->key_day, 10);
        rc |= pe_buf_append(&keys, "\t", 1);
        rc |= pe_buf_append(&keys, refs[k].row->event_id, PE_EVENT_UUID_LEN);
        rc |= pe_buf_append(&keys, "\n", 1);
    }
    if (rc != 0) {
        rc = PE_ENOMEM;
        goto out;
    }
    uint64_t rows = 0;
    int end;
    if (keys.len) {
        int64_t t0 = pe_now_mono_us();
        rc = pe_db_copy_begin(w->conn, "COPY event_keys (store_id, key_day, event_id) FROM STDIN");
        if (rc == 0)
            rc = pe_db_copy_send(w->conn, keys.data, keys.len);
        end = pe_db_copy_end(w->conn, &rows);
        rc = rc != 0 ? rc : end;
        atomic_fetch_add(&w->c->phase_us[0], (uint64_t)(pe_now_mono_us() - t0));
        if (rc != 0)
            goto out;
    }
    rc = pe_db_copy_begin(w->conn, COLLECTOR_EVENTS_COPY_SQL);
    if (rc == 0)
        rc = pe_db_copy_send(w->conn, PE_DB_COPY_BINARY_HEADER, PE_DB_COPY_BINARY_HEADER_LEN);
    if (whole_jobs) {
        /* each job's rows in one message: far fewer CopyData messages for the server to read */
        for (const collector_job_t *j = jobs; rc == 0 && j; j = j->next) {
            rc = pe_db_copy_send(w->conn, j->events_copy.data, j->events_copy.len);
            *inserted += j->nevents;
        }
    } else {
        for (size_t k = 0; rc == 0 && k < n; k++) {
            if (refs[k].duplicate)
                continue;
            const collector_job_t *j = refs[k].job;
            rc = pe_db_copy_send(w->conn, j->events_copy.data + refs[k].row->offset,
                                 refs[k].row->len);
            (*inserted)++;
        }
    }
    if (rc == 0)
        rc = pe_db_copy_send(w->conn, PE_DB_COPY_BINARY_TRAILER, PE_DB_COPY_BINARY_TRAILER_LEN);
    end = pe_db_copy_end(w->conn, &rows);
    rc = rc != 0 ? rc : end;
out:
    pe_buf_free(&keys);
    return rc;
}

/* The fallback for imported events: those whose primary key (store, occurred_at, event_id) is
 * not in events yet are marked fresh. */
static int mark_new_imports(writer_t *w, key_ref_t *refs, size_t n)
{
    static const char sql[] =
        "SELECT k.i FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[]) WITH ORDINALITY"
        " AS k (s, t, e, i) WHERE EXISTS (SELECT 1 FROM events WHERE store_id = k.s"
        " AND occurred_at = k.t AND event_id = k.e)";
    pe_buf_t stores = PE_BUF_INIT, times = PE_BUF_INIT, ids = PE_BUF_INIT;
    pe_db_result_t *res = NULL;
    size_t *which = malloc((n + 1) * sizeof *which), m = 0;
    int rc = which ? 0 : PE_ENOMEM;
    rc |= pe_buf_puts(&stores, "{") | pe_buf_puts(&times, "{") | pe_buf_puts(&ids, "{");
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (refs[k].duplicate || !refs[k].import)
            continue;
        which[m++] = k;
        refs[k].fresh = true;
        rc |= pe_buf_printf(&stores, "%s%s", m > 1 ? "," : "", refs[k].job->store_id);
        rc |= pe_buf_printf(&times, "%s\"%s\"", m > 1 ? "," : "", refs[k].row->occurred);
        rc |= pe_buf_printf(&ids, "%s%s", m > 1 ? "," : "", refs[k].row->event_id);
    }
    rc |= pe_buf_puts(&stores, "}") | pe_buf_puts(&times, "}") | pe_buf_puts(&ids, "}");
    if (rc != 0) {
        rc = PE_ENOMEM;
        goto out;
    }
    if (m == 0)
        goto out;
    const char *params[] = {stores.data, times.data, ids.data};
    rc = pe_db_exec(w->conn, sql, 3, params, &res);
    if (rc != 0)
        goto out;
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        long i = strtol(pe_db_result_get(res, r, 0), NULL, 10); /* 1-based ordinal */
        if (i < 1 || (size_t)i > m) {
            rc = PE_EINTERNAL;
            goto out;
        }
        refs[which[i - 1]].fresh = false; /* stored before */
    }
out:
    free(which);
    pe_db_result_free(res);
    pe_buf_free(&stores);
    pe_buf_free(&times);
    pe_buf_free(&ids);
    return rc;
}

/* The fallback: the keys go in with ON CONFLICT DO NOTHING RETURNING, and only the events
 * whose key came back new are copied. */
static int insert_new_events(writer_t *w, key_ref_t *refs, size_t n, uint64_t *inserted)
{
    pe_buf_t stores = PE_BUF_INIT, days = PE_BUF_INIT, ids = PE_BUF_INIT;
    pe_db_result_t *res = NULL;
    /* array literals {a,b,…}: plain appends, this runs once per event */
    int rc = pe_buf_puts(&stores, "{") | pe_buf_puts(&days, "{") | pe_buf_puts(&ids, "{");
    size_t live = 0;
    for (size_t k = 0; k < n; k++) {
        refs[k].fresh = false;
        if (refs[k].duplicate || refs[k].import)
            continue;
        live++;
        rc |= pe_buf_puts(&stores, refs[k].job->store_id);
        rc |= pe_buf_append(&stores, ",", 1);
        rc |= pe_buf_append(&days, refs[k].row->key_day, 10);
        rc |= pe_buf_append(&days, ",", 1);
        rc |= pe_buf_append(&ids, refs[k].row->event_id, PE_EVENT_UUID_LEN);
        rc |= pe_buf_append(&ids, ",", 1);
    }
    if (rc != 0) {
        rc = PE_ENOMEM;
        goto out;
    }
    if (live == 0)
        goto imported;
    /* the last ',' becomes the closing '}' */
    stores.data[stores.len - 1] = days.data[days.len - 1] = ids.data[ids.len - 1] = '}';
    const char *params[] = {stores.data, days.data, ids.data};
    int64_t t0 = pe_now_mono_us();
    rc = pe_db_exec(w->conn, KEYS_SQL, 3, params, &res);
    atomic_fetch_add(&w->c->phase_us[0], (uint64_t)(pe_now_mono_us() - t0));
    if (rc != 0)
        goto out;
    /* Mark the keys that came back: they are the new ones. The answer comes in no particular
     * order; refs are sorted, so each is found by binary search. */
    for (size_t r = 0; r < pe_db_result_rows(res); r++) {
        const char *store = pe_db_result_get(res, r, 0), *day = pe_db_result_get(res, r, 1);
        const char *id = pe_db_result_get(res, r, 2);
        size_t lo = 0, hi = n; /* the first ref not below the key: the non-duplicate one */
        int d = 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (key_cmp(&refs[mid], store, day, id) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < n)
            d = key_cmp(&refs[lo], store, day, id);
        if (d != 0) { /* PostgreSQL wrote back a key we did not send: never drop its event */
            rc = PE_EINTERNAL;
            goto out;
        }
        refs[lo].fresh = true;
    }
imported:
    rc = mark_new_imports(w, refs, n);
    if (rc != 0)
        goto out;
    rc = pe_db_copy_begin(w->conn, COLLECTOR_EVENTS_COPY_SQL);
    if (rc == 0)
        rc = pe_db_copy_send(w->conn, PE_DB_COPY_BINARY_HEADER, PE_DB_COPY_BINARY_HEADER_LEN);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (!refs[k].fresh)
            continue;
        const collector_job_t *j = refs[k].job;
        rc = pe_db_copy_send(w->conn, j->events_copy.data + refs[k].row->offset, refs[k].row->len);
        (*inserted)++;
    }
    if (rc == 0)
        rc = pe_db_copy_send(w->conn, PE_DB_COPY_BINARY_TRAILER, PE_DB_COPY_BINARY_TRAILER_LEN);
    uint64_t rows = 0;
    int end = pe_db_copy_end(w->conn, &rows);
    if (rc == 0)
        rc = end;
out:
    pe_db_result_free(res);
    pe_buf_free(&stores);
    pe_buf_free(&days);
    pe_buf_free(&ids);
    return rc;
}

/* Stores the events of the commit whose key is new; *inserted counts them. Keys go in sorted
 * order, so concurrent writers lock any keys they share in the same order and cannot deadlock
 * on each other, and a key twice in the commit is adjacent (the second is a duplicate). */
static int store_events(writer_t *w, collector_job_t *jobs, size_t nevents, bool conflict_aware,
                        uint64_t *inserted)
{
    key_ref_t *refs = malloc(nevents * sizeof *refs);
    int rc = PE_ENOMEM;
    if (!refs)
        goto out;
    size_t n = 0;
    for (collector_job_t *j = jobs; j; j = j->next)
        for (size_t i = 0; i < j->nevents; i++)
            refs[n++] =
                (key_ref_t){.job = j, .row = &j->rows[i], .import = j->mode == PE_COLLECTOR_IMPORT};
    qsort(refs, n, sizeof *refs, key_ref_cmp);
    for (size_t k = 1; k < n; k++)
        refs[k].duplicate = key_ref_cmp(&refs[k - 1], &refs[k]) == 0;

    *inserted = 0;
    rc = conflict_aware ? insert_new_events(w, refs, n, inserted)
                        : copy_new_events(w, jobs, refs, n, inserted);
out:
    free(refs);
    return rc;
}

static int copy_dead_letters(pe_db_conn_t *conn, collector_job_t *jobs)
{
    int rc = pe_db_copy_begin(conn, "COPY events_rejected (store_id, received_at, event_index,"
                                    " event_id, code, message, raw) FROM STDIN");
    for (collector_job_t *j = jobs; rc == 0 && j; j = j->next)
        if (j->rejects_copy.len)
            rc = pe_db_copy_send(conn, j->rejects_copy.data, j->rejects_copy.len);
    uint64_t rows = 0;
    int end = pe_db_copy_end(conn, &rows);
    return rc != 0 ? rc : end;
}

/* Tells 0009_event_commits.sql's trigger the least received_at of this commit's events, the
 * exact lower bound the aggregation job reads from (invariant 2 there). */
static int set_received_from(pe_db_conn_t *conn, const collector_job_t *jobs)
{
    int64_t least = INT64_MAX;
    for (const collector_job_t *j = jobs; j; j = j->next)
        if (j->nevents && j->received_at_us < least)
            least = j->received_at_us;
    if (least == INT64_MAX)
        return 0;
    char at[40];
    pe_time_format_rfc3339(least, at, sizeof at);
    const char *params[] = {at};
    return pe_db_exec(conn, "SELECT set_config('pe.received_from', $1, true)", 1, params, NULL);
}

/* One try at storing the taken jobs in one transaction, counted in the stats when it commits.
 * *commit_sent tells whether COMMIT went to the server: from then on the outcome of a failure
 * is unknown (invariant 7). Returns 0 or a PE_E… code; the connection is left held, or NULL when
 * none could be had. */
static int store_jobs(writer_t *w, collector_job_t *jobs, size_t nevents, size_t nrejects,
                      int64_t now_hour, bool *commit_sent)
{
    pe_collector_t *c = w->c;
    int64_t start_us = pe_now_mono_us();
    int rc = ensure_connection(w);
    if (rc != 0)
        goto out;
    for (collector_job_t *j = jobs; j; j = j->next) {
        if (j->ndays && (rc = collector_ensure_partitions(c, w->conn, j)) != 0)
            goto out;
    }
    bool conflict_aware = false;
    uint64_t inserted = 0;
again:
    rc = pe_db_begin(w->conn);
    if (rc != 0)
        goto out;
    if (nevents) {
        rc = set_received_from(w->conn, jobs);
        if (rc != 0)
            goto out;
        rc = store_events(w, jobs, nevents, conflict_aware, &inserted);
        if (rc == PE_ECONFLICT && !conflict_aware) {
            /* an event stored before (a retry): do the commit again, conflict-aware. A whole
             * new transaction, not a savepoint: rows must carry top-level transaction ids,
             * which the aggregation's snapshot watermark relies on (aggregate/run.c inv. 3). */
            atomic_fetch_add(&c->slow_paths, 1);
            conflict_aware = true;
            rc = pe_db_rollback(w->conn);
            if (rc != 0)
                goto out;
            goto again;
        }
        if (rc != 0)
            goto out;
    }
    int64_t stored_us = pe_now_mono_us();
    if (nrejects) {
        rc = copy_dead_letters(w->conn, jobs);
        if (rc != 0)
            goto out;
    }
    for (collector_job_t *j = jobs; j; j = j->next) {
        if (!j->dead_letters_dropped)
            continue;
        char hour[32], dropped[32];
        snprintf(hour, sizeof hour, "%lld", (long long)(now_hour * 3600));
        snprintf(dropped, sizeof dropped, "%zu", j->dead_letters_dropped);
        const char *params[] = {j->store_id, hour, dropped};
        rc = pe_db_exec(w->conn, OVERFLOW_SQL, 3, params, NULL);
        if (rc != 0)
            goto out;
    }
    *commit_sent = true;
    rc = pe_db_commit(w->conn);
    if (rc != 0)
        goto out;
    int64_t end_us = pe_now_mono_us();
    atomic_fetch_add(&c->commit_us, (uint64_t)(end_us - start_us));
    atomic_fetch_add(&c->phase_us[1], (uint64_t)(stored_us - start_us));
    atomic_fetch_add(&c->phase_us[2], (uint64_t)(end_us - stored_us));
    if (end_us - start_us > SLOW_COMMIT_US)
        pe_log(PE_LOG_WARN, "collector_slow_commit",
               "%zu events, %zu dead letters: %.1f ms storing, %.1f ms in COMMIT", nevents,
               nrejects, (double)(stored_us - start_us) / 1000.0,
               (double)(end_us - stored_us) / 1000.0);
    atomic_fetch_add(&c->commits, 1);
    atomic_fetch_add(&c->stored, inserted);
    atomic_fetch_add(&c->duplicates, nevents - inserted);
    atomic_fetch_add(&c->rejected, nrejects);
    rc = 0;
out:
    return rc;
}

/* One transaction for every taken job, tried a second time on a new connection when the first
 * lost its connection before COMMIT (invariant 7). Returns 0 or a PE_E… code. */
static int commit_jobs(writer_t *w, collector_job_t *jobs)
{
    pe_collector_t *c = w->c;
    size_t nevents = 0, nrejects = 0;
    int64_t now_hour = pe_now_unix_us() / 3600000000LL;
    pthread_mutex_lock(&c->dl_lock);
    for (collector_job_t *j = jobs; j; j = j->next) {
        nevents += j->nevents;
        if (j->nrejects) {
            dead_letter_slot_t *s = dl_slot(c, j->store_id, now_hour);
            if (s->stored + j->nrejects > c->cfg.dead_letters_per_store_hour) {
                j->dead_letters_dropped = j->nrejects;
                pe_buf_free(&j->rejects_copy); /* counted, not kept (invariant 3) */
            } else {
                s->stored += j->nrejects;
                nrejects += j->nrejects;
            }
        }
    }
    pthread_mutex_unlock(&c->dl_lock);

    int rc = PE_EINTERNAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool commit_sent = false;
        rc = store_jobs(w, jobs, nevents, nrejects, now_hour, &commit_sent);
        if (rc == 0 || !w->conn)
            break; /* stored, or no connection to be had: PostgreSQL is down */
        bool lost = pe_db_conn_lost(w->conn);
        pe_log(PE_LOG_WARN, "collector_commit_failed", "%s: %s", pe_strerror(rc),
               pe_db_conn_error(w->conn));
        drop_connection(w);
        if (!lost || commit_sent)
            break;
        if (attempt == 0)
            pe_log(PE_LOG_WARN, "collector_commit_retry",
                   "the connection was lost before COMMIT (nothing was stored): storing the %zu "
                   "events and %zu dead letters again on a new connection",
                   nevents, nrejects);
    }
    return rc;
}

static bool day_ensured(pe_collector_t *c, int32_t day, int64_t now_us)
{
    ensured_day_t *e = &c->ensured[(uint32_t)day % ENSURED_SLOTS];
    pthread_mutex_lock(&c->days_lock);
    bool known = e->at_us && e->day == day && now_us - e->at_us < ENSURED_TTL_US;
    pthread_mutex_unlock(&c->days_lock);
    return known;
}

int collector_ensure_partitions(pe_collector_t *c, pe_db_conn_t *conn, const collector_job_t *job)
{
    pe_buf_t times = PE_BUF_INIT;
    int64_t now_us = pe_now_mono_us();
    int rc = pe_buf_puts(&times, "{");
    size_t missing = 0;
    for (size_t i = 0; i < job->ndays; i++) {
        if (day_ensured(c, job->days[i], now_us))
            continue;
        int64_t start = (int64_t)job->days[i] * 86400;
        rc |= pe_buf_printf(&times, "%s%lld,%lld", missing ? "," : "", (long long)start,
                            (long long)(start + 86399));
        missing++;
    }
    if (rc != 0 || missing == 0)
        goto out;
    rc = pe_buf_puts(&times, "}");
    if (rc != 0)
        goto out;
    const char *params[] = {times.data};
    rc = pe_db_begin(conn);
    if (rc == 0)
        rc = pe_db_exec(conn, "SELECT pg_advisory_xact_lock(" PARTITIONS_LOCK_KEY ")", 0, NULL,
                        NULL);
    if (rc == 0)
        rc = pe_db_exec(conn, PARTITIONS_SQL, 1, params, NULL);
    rc = rc == 0 ? pe_db_commit(conn) : rc;
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&c->days_lock);
    for (size_t i = 0; i < job->ndays; i++)
        c->ensured[(uint32_t)job->days[i] % ENSURED_SLOTS] = (ensured_day_t){job->days[i], now_us};
    pthread_mutex_unlock(&c->days_lock);
out:
    pe_buf_free(&times);
    return rc;
}

static void finish_jobs(pe_collector_t *c, collector_job_t *jobs, int rc)
{
    if (rc != 0)
        atomic_fetch_add(&c->failures, 1);
    while (jobs) {
        collector_job_t *next = jobs->next;
        pe_collector_result_t result = {
            .rc = rc == 0             ? 0
                  : rc == PE_ETIMEOUT ? PE_ETIMEOUT
                                      : PE_EUNAVAIL,
            .accepted = jobs->accepted,
            .nrejected = jobs->nrejects,
            .rejected = jobs->rejected,
        };
        atomic_fetch_add(&c->batches, 1);
        jobs->done(jobs->arg, &result);
        collector_job_free(jobs);
        jobs = next;
    }
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    atomic_fetch_add(&w->c->writers_running, 1);
    for (;;) {
        collector_job_t *jobs = take_jobs(w->c);
        if (!jobs)
            break;
        finish_jobs(w->c, jobs, commit_jobs(w, jobs));
    }
    if (w->conn)
        drop_connection(w);
    atomic_fetch_sub(&w->c->writers_running, 1);
    return NULL;
}

static void join_writers(pe_collector_t *c, unsigned n)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = true; /* the writers drain what is queued, then exit */
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->lock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(c->writers[i].thread, NULL);
}

pe_collector_t *pe_collector_new(const pe_collector_config_t *cfg)
{
    pe_collector_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (!c->cfg.queue_max_events)
        c->cfg.queue_max_events = 100000;
    if (!c->cfg.store_queue_pct || c->cfg.store_queue_pct > 100)
        c->cfg.store_queue_pct = 50;
    if (!c->cfg.window_ms)
        c->cfg.window_ms = 2;
    if (!c->cfg.max_commit_events)
        c->cfg.max_commit_events = 10000;
    if (!c->cfg.dead_letters_per_store_hour)
        c->cfg.dead_letters_per_store_hour = 10000;
    if (!c->cfg.writers)
        c->cfg.writers = 2;
    if (!c->cfg.retention_days)
        c->cfg.retention_days = PE_COLLECTOR_RETENTION_DAYS;
    if (c->cfg.writers > MAX_WRITERS)
        c->cfg.writers = MAX_WRITERS;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->dl_lock, NULL);
    pthread_mutex_init(&c->days_lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    for (c->nwriters = 0; c->nwriters < c->cfg.writers; c->nwriters++) {
        writer_t *w = &c->writers[c->nwriters];
        w->c = c;
        if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
            join_writers(c, c->nwriters);
            pthread_cond_destroy(&c->wake);
            pthread_mutex_destroy(&c->days_lock);
            pthread_mutex_destroy(&c->dl_lock);
            pthread_mutex_destroy(&c->lock);
            free(c);
            return NULL;
        }
    }
    return c;
}

unsigned collector_retention_days(const pe_collector_t *c)
{
    return c->cfg.retention_days;
}

void pe_collector_stop(pe_collector_t *c)
{
    pthread_mutex_lock(&c->lock);
    bool joined = c->joined;
    c->joined = true;
    pthread_mutex_unlock(&c->lock);
    if (!joined)
        join_writers(c, c->nwriters);
}

void pe_collector_free(pe_collector_t *c)
{
    if (!c)
        return;
    pe_collector_stop(c);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->days_lock);
    pthread_mutex_destroy(&c->dl_lock);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void pe_collector_stats(pe_collector_t *c, pe_collector_stats_t *out)
{
    out->batches_total = atomic_load(&c->batches);
    out->events_stored_total = atomic_load(&c->stored);
    out->events_duplicate_total = atomic_load(&c->duplicates);
    out->events_rejected_total = atomic_load(&c->rejected);
    out->commits_total = atomic_load(&c->commits);
    out->commit_failures_total = atomic_load(&c->failures);
    out->queue_full_total = atomic_load(&c->queue_full);
    out->store_share_full_total = atomic_load(&c->store_share_full);
    out->writers_running = atomic_load(&c->writers_running);
    pthread_mutex_lock(&c->lock);
    out->queued_events = c->queued_events;
    pthread_mutex_unlock(&c->lock);
}

int pe_collector_metrics(pe_collector_t *c, pe_buf_t *out)
{
    pe_collector_stats_t s;
    pe_collector_stats(c, &s);
    int rc = pe_buf_printf(
        out,
        "# HELP pe_collector_batches_total Event batches answered.\n"
        "# TYPE pe_collector_batches_total counter\n"
        "pe_collector_batches_total %llu\n"
        "# HELP pe_collector_events_total Events by outcome.\n"
        "# TYPE pe_collector_events_total counter\n"
        "pe_collector_events_total{outcome=\"stored\"} %llu\n"
        "pe_collector_events_total{outcome=\"duplicate\"} %llu\n"
        "pe_collector_events_total{outcome=\"rejected\"} %llu\n"
        "# HELP pe_collector_commits_total Group commits by result.\n"
        "# TYPE pe_collector_commits_total counter\n"
        "pe_collector_commits_total{result=\"ok\"} %llu\n"
        "pe_collector_commits_total{result=\"failed\"} %llu\n"
        "# HELP pe_collector_commit_seconds_total Time spent in successful group commits.\n"
        "# TYPE pe_collector_commit_seconds_total counter\n"
        "pe_collector_commit_seconds_total %.6f\n"
        "# HELP pe_collector_commit_phase_seconds_total Of that: idempotency keys, storing (keys,"
        " events, dead letters), COMMIT.\n"
        "# TYPE pe_collector_commit_phase_seconds_total counter\n"
        "pe_collector_commit_phase_seconds_total{phase=\"keys\"} %.6f\n"
        "pe_collector_commit_phase_seconds_total{phase=\"store\"} %.6f\n"
        "pe_collector_commit_phase_seconds_total{phase=\"commit\"} %.6f\n"
        "# HELP pe_collector_fallback_commits_total Commits that met an already stored event"
        " (a retry) and deduplicated it.\n"
        "# TYPE pe_collector_fallback_commits_total counter\n"
        "pe_collector_fallback_commits_total %llu\n"
        "# HELP pe_collector_queue_full_total Batches refused because the queue was full.\n"
        "# TYPE pe_collector_queue_full_total counter\n"
        "pe_collector_queue_full_total %llu\n"
        "# HELP pe_collector_store_share_full_total Batches refused because their store already"
        " held its share of a filling queue.\n"
        "# TYPE pe_collector_store_share_full_total counter\n"
        "pe_collector_store_share_full_total %llu\n"
        "# HELP pe_collector_writers Group-commit writer threads running.\n"
        "# TYPE pe_collector_writers gauge\n"
        "pe_collector_writers %u\n"
        "# HELP pe_collector_queued_events Events waiting for the writer.\n"
        "# TYPE pe_collector_queued_events gauge\n"
        "pe_collector_queued_events %zu\n",
        (unsigned long long)s.batches_total, (unsigned long long)s.events_stored_total,
        (unsigned long long)s.events_duplicate_total, (unsigned long long)s.events_rejected_total,
        (unsigned long long)s.commits_total, (unsigned long long)s.commit_failures_total,
        (double)atomic_load(&c->commit_us) / 1e6, (double)atomic_load(&c->phase_us[0]) / 1e6,
        (double)atomic_load(&c->phase_us[1]) / 1e6, (double)atomic_load(&c->phase_us[2]) / 1e6,
        (unsigned long long)atomic_load(&c->slow_paths), (unsigned long long)s.queue_full_total,
        (unsigned long long)s.store_share_full_total, s.writers_running, s.queued_events);
    return rc;
}
