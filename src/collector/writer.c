/*
 * writer.c — the group-commit writer: one thread that gathers the batches of many requests for
 * a few milliseconds and stores them with one COPY per transaction, then tells every request
 * its outcome.
 *
 *    ingest() ──enqueue──▶ [queue] ──wait window_ms──▶ take ≤ max_commit_events
 *                                                           │
 *            BEGIN; COPY pe_staging; INSERT keys+events; COPY events_rejected; COMMIT
 *                                                           │
 *                         ok ──▶ done(rc = 0) for each job  │  error ──▶ ROLLBACK,
 *                                                           │  done(rc = PE_EUNAVAIL)
 *
 *   state       function         what happens
 *   idle        writer_main()    waits on the queue's condition variable
 *   gathering   take_jobs()      lets concurrent requests join for window_ms, then takes them
 *   committing  commit_jobs()    one transaction for every taken job
 *   answering   finish_jobs()    done() per job, outside the lock, after COMMIT or ROLLBACK
 *
 * Invariants:
 *  1. done(rc = 0) only after COMMIT returned success (nothing acknowledged is lost).
 *  2. The queue never holds more than queue_max_events events; beyond that ingest is refused
 *     (the HTTP layer answers 503 with Retry-After) instead of growing memory.
 *  3. Dead letters beyond dead_letters_per_store_hour are counted in events_rejected_overflow
 *     instead of stored, so a flood of garbage cannot fill the disk.
 *  4. The writer holds one dedicated connection (with its temporary staging table) while it
 *     works; on any error it hands it back (rolled back) and takes one again for the next
 *     commit, which may be the same session: the staging table is created IF NOT EXISTS.
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

typedef struct {
    char store_id[PE_EVENT_ID_MAX + 1];
    int64_t hour;
    size_t stored;
    size_t dropped; /* not yet written to events_rejected_overflow */
} dead_letter_slot_t;

struct pe_collector {
    pe_collector_config_t cfg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    collector_job_t *head, *tail;
    size_t queued_events;
    bool stopping;
    bool joined; /* pe_collector_stop has joined (or is joining) the writer */
    pthread_t thread;
    pe_db_conn_t *conn;
    bool staging_ready;
    dead_letter_slot_t dl[DL_SLOTS]; /* writer thread only */
    _Atomic uint64_t batches, stored, duplicates, rejected, commits, failures, queue_full;
};

static const char STAGING_SQL[] =
    "CREATE TEMP TABLE IF NOT EXISTS pe_staging (store_id uuid, occurred_at timestamptz, event_id "
    "uuid, "
    "name text, funnel_step smallint, session_id text, anonymous_id text, user_id text, "
    "client_ts timestamptz, received_at timestamptz, page_path text, utm_source text, "
    "utm_medium text, utm_campaign text, device_type text, context jsonb, properties jsonb, "
    "custom jsonb, key_day date) ON COMMIT DELETE ROWS";

/* Stores each staged event whose (store, key day, event id) key is new; see 0002_events.sql. */
static const char INSERT_SQL[] =
    "WITH fresh AS ("
    " INSERT INTO event_keys (store_id, key_day, event_id)"
    " SELECT DISTINCT store_id, key_day, event_id FROM pe_staging"
    " ON CONFLICT DO NOTHING RETURNING store_id, key_day, event_id) "
    "INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step, session_id,"
    " anonymous_id, user_id, client_ts, received_at, page_path, utm_source, utm_medium,"
    " utm_campaign, device_type, context, properties, custom) "
    "SELECT DISTINCT ON (s.store_id, s.key_day, s.event_id) s.store_id, s.occurred_at,"
    " s.event_id, s.name, s.funnel_step, s.session_id, s.anonymous_id, s.user_id, s.client_ts,"
    " s.received_at, s.page_path, s.utm_source, s.utm_medium, s.utm_campaign, s.device_type,"
    " s.context, s.properties, s.custom "
    "FROM pe_staging s JOIN fresh f"
    " ON f.store_id = s.store_id AND f.key_day = s.key_day AND f.event_id = s.event_id";

static const char OVERFLOW_SQL[] =
    "INSERT INTO events_rejected_overflow (store_id, hour, dropped)"
    " VALUES ($1, to_timestamp($2::bigint), $3::bigint)"
    " ON CONFLICT (store_id, hour) DO UPDATE"
    " SET dropped = events_rejected_overflow.dropped + EXCLUDED.dropped";

int collector_enqueue(pe_collector_t *c, collector_job_t *job)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    size_t size = job->nevents + job->nrejects;
    if (c->stopping || c->queued_events + size > c->cfg.queue_max_events) {
        atomic_fetch_add(&c->queue_full, 1);
        rc = PE_EUNAVAIL;
    } else {
        if (c->tail)
            c->tail->next = job;
        else
            c->head = job;
        c->tail = job;
        c->queued_events += size;
        pthread_cond_signal(&c->wake);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void add_ms(struct timespec *ts, unsigned ms)
{
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* Waits for work, lets more join for window_ms, takes up to max_commit_events. Returns NULL
 * only when stopping with an empty queue. */
static collector_job_t *take_jobs(pe_collector_t *c)
{
    pthread_mutex_lock(&c->lock);
    while (!c->head && !c->stopping)
        pthread_cond_wait(&c->wake, &c->lock);
    if (c->head && !c->stopping && c->queued_events < c->cfg.max_commit_events &&
        c->cfg.window_ms > 0) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        add_ms(&deadline, c->cfg.window_ms);
        while (!c->stopping && c->queued_events < c->cfg.max_commit_events &&
               pthread_cond_timedwait(&c->wake, &c->lock, &deadline) == 0)
            ;
    }
    collector_job_t *taken = NULL, **tailp = &taken;
    size_t events = 0;
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
    }
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
        s->dropped = 0;
    }
    return s;
}

static int ensure_connection(pe_collector_t *c)
{
    if (c->conn)
        return 0;
    int rc = pe_db_acquire(c->cfg.db, ACQUIRE_TIMEOUT_MS, &c->conn);
    if (rc != 0)
        return rc;
    c->staging_ready = false;
    return 0;
}

static void drop_connection(pe_collector_t *c)
{
    pe_db_release(c->cfg.db, c->conn); /* rolls back an open transaction */
    c->conn = NULL;
    c->staging_ready = false;
}

static int copy_rows(pe_db_conn_t *conn, const char *sql, collector_job_t *jobs, bool events)
{
    int rc = pe_db_copy_begin(conn, sql);
    for (collector_job_t *j = jobs; rc == 0 && j; j = j->next) {
        const pe_buf_t *b = events ? &j->events_copy : &j->rejects_copy;
        if (b->len)
            rc = pe_db_copy_send(conn, b->data, b->len);
    }
    uint64_t rows = 0;
    int end = pe_db_copy_end(conn, &rows);
    return rc != 0 ? rc : end;
}

/* One transaction for every taken job. Returns 0 or a PE_E… code. */
static int commit_jobs(pe_collector_t *c, collector_job_t *jobs)
{
    size_t nevents = 0, nrejects = 0;
    int64_t now_hour = pe_now_unix_us() / 3600000000LL;
    for (collector_job_t *j = jobs; j; j = j->next) {
        nevents += j->nevents;
        if (j->nrejects) {
            dead_letter_slot_t *s = dl_slot(c, j->store_id, now_hour);
            if (s->stored + j->nrejects > c->cfg.dead_letters_per_store_hour) {
                s->dropped += j->nrejects;
                pe_buf_free(&j->rejects_copy); /* counted, not kept (invariant 3) */
            } else {
                s->stored += j->nrejects;
                nrejects += j->nrejects;
            }
        }
    }

    int rc = ensure_connection(c);
    if (rc != 0)
        return rc;
    if (!c->staging_ready) {
        rc = pe_db_exec(c->conn, STAGING_SQL, 0, NULL, NULL);
        if (rc != 0)
            goto fail;
        c->staging_ready = true;
    }
    rc = pe_db_begin(c->conn);
    if (rc != 0)
        goto fail;
    uint64_t inserted = 0;
    if (nevents) {
        rc = copy_rows(c->conn, "COPY pe_staging (" COLLECTOR_STAGING_COLUMNS ") FROM STDIN", jobs,
                       true);
        if (rc != 0)
            goto fail;
        pe_db_result_t *res = NULL;
        rc = pe_db_exec(c->conn, INSERT_SQL, 0, NULL, &res);
        if (rc != 0)
            goto fail;
        inserted = pe_db_result_affected(res);
        pe_db_result_free(res);
    }
    if (nrejects) {
        rc = copy_rows(c->conn,
                       "COPY events_rejected (store_id, received_at, event_index, event_id, code,"
                       " message, raw) FROM STDIN",
                       jobs, false);
        if (rc != 0)
            goto fail;
    }
    for (collector_job_t *j = jobs; j; j = j->next) {
        dead_letter_slot_t *s = dl_slot(c, j->store_id, now_hour);
        if (!s->dropped)
            continue;
        char hour[32], dropped[32];
        snprintf(hour, sizeof hour, "%lld", (long long)(now_hour * 3600));
        snprintf(dropped, sizeof dropped, "%zu", s->dropped);
        const char *params[] = {j->store_id, hour, dropped};
        rc = pe_db_exec(c->conn, OVERFLOW_SQL, 3, params, NULL);
        if (rc != 0)
            goto fail;
        s->dropped = 0;
    }
    rc = pe_db_commit(c->conn);
    if (rc != 0)
        goto fail;
    atomic_fetch_add(&c->commits, 1);
    atomic_fetch_add(&c->stored, inserted);
    atomic_fetch_add(&c->duplicates, nevents - inserted);
    atomic_fetch_add(&c->rejected, nrejects);
    return 0;
fail:
    pe_log(PE_LOG_WARN, "collector_commit_failed", "%s: %s", pe_strerror(rc),
           pe_db_conn_error(c->conn));
    drop_connection(c);
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
    pe_collector_t *c = arg;
    for (;;) {
        collector_job_t *jobs = take_jobs(c);
        if (!jobs)
            break;
        finish_jobs(c, jobs, commit_jobs(c, jobs));
    }
    if (c->conn)
        drop_connection(c);
    return NULL;
}

pe_collector_t *pe_collector_new(const pe_collector_config_t *cfg)
{
    pe_collector_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (!c->cfg.queue_max_events)
        c->cfg.queue_max_events = 100000;
    if (!c->cfg.window_ms)
        c->cfg.window_ms = 2;
    if (!c->cfg.max_commit_events)
        c->cfg.max_commit_events = 10000;
    if (!c->cfg.dead_letters_per_store_hour)
        c->cfg.dead_letters_per_store_hour = 10000;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, writer_main, c) != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    return c;
}

void pe_collector_stop(pe_collector_t *c)
{
    pthread_mutex_lock(&c->lock);
    bool joined = c->joined;
    c->stopping = true; /* the writer drains what is queued, then exits */
    c->joined = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (!joined)
        pthread_join(c->thread, NULL);
}

void pe_collector_free(pe_collector_t *c)
{
    if (!c)
        return;
    pe_collector_stop(c);
    pthread_cond_destroy(&c->wake);
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
        "# HELP pe_collector_queue_full_total Batches refused because the queue was full.\n"
        "# TYPE pe_collector_queue_full_total counter\n"
        "pe_collector_queue_full_total %llu\n"
        "# HELP pe_collector_queued_events Events waiting for the writer.\n"
        "# TYPE pe_collector_queued_events gauge\n"
        "pe_collector_queued_events %zu\n",
        (unsigned long long)s.batches_total, (unsigned long long)s.events_stored_total,
        (unsigned long long)s.events_duplicate_total, (unsigned long long)s.events_rejected_total,
        (unsigned long long)s.commits_total, (unsigned long long)s.commit_failures_total,
        (unsigned long long)s.queue_full_total, s.queued_events);
    return rc;
}
