/*
 * pe/collector.h — durable event ingestion: validates a batch, corrects clock skew, and hands the
 * rows to a group-commit writer that stores many requests' events with one COPY per
 * transaction; the caller learns the outcome only after COMMIT.
 *
 * Invariants:
 *  1. Nothing acknowledged is lost: the done callback reports success only after the
 *     transaction holding the batch's events (and its dead letters) has committed.
 *  2. Idempotent: an eventId already stored for the store is not stored again (a retry), also
 *     when it arrives in the same batch twice.
 *  3. Nothing refused disappears: every invalid event becomes a dead-letter row with its raw
 *     JSON, reason code and message (bounded per store and hour; beyond the bound only counted).
 *  4. When PostgreSQL is unreachable or the queue is full the caller is told (PE_EUNAVAIL) and
 *     must answer 503 with Retry-After; never a success.
 *  5. Thread-safe: any HTTP thread may ingest; the writer threads talk to PostgreSQL.
 */
#ifndef PE_COLLECTOR_H
#define PE_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"
#include "pe/db.h"
#include "pe/events.h"

#define PE_COLLECTOR_MAX_EVENTS  PE_EVENT_BATCH_MAX_EVENTS /* per request, as the schema says */
#define PE_COLLECTOR_MAX_BODY    (512 * 1024)              /* per request */
#define PE_COLLECTOR_MAX_AGE_S   (7 * 86400)               /* older events go to the dead letter */
#define PE_COLLECTOR_MAX_AHEAD_S 3600                      /* events further in the future too */
/* Days raw events are kept unless configured otherwise (PE_EVENTS_RETENTION_DAYS). */
#define PE_COLLECTOR_RETENTION_DAYS 400

/* Where a batch comes from, which decides how its timestamps are read. */
typedef enum {
    /* Storefront traffic (publishable key): the client clock is corrected with sentAt against
     * the receive time; events more than 7 days old or 1 hour ahead are refused. */
    PE_COLLECTOR_LIVE = 0,
    /* History sent server-to-server (secret key, `profit-engine simulate`, migrations from
     * another tool): timestamps are taken as sent (no skew correction), as old as the retention
     * allows; the daily partitions those days need are created on the way. Idempotent on the
     * primary key of events (store, timestamp, eventId), which lives as long as the event. */
    PE_COLLECTOR_IMPORT = 1,
} pe_collector_mode_t;

typedef struct pe_collector pe_collector_t;

typedef struct {
    pe_db_pool_t *db;
    size_t queue_max_events; /* events waiting for the writer before PE_EUNAVAIL (default 100000) */
    /* A store holding more than this % of queue_max_events waiting is refused (PE_EUNAVAIL)
     * once the queue is that full, so the rest stays for the other stores (default 50; 100:
     * one store may fill it all). */
    unsigned store_queue_pct;
    unsigned window_ms; /* how long a queued request waits for others to share its commit (2) */
    size_t max_commit_events;           /* events per transaction (default 10000) */
    size_t dead_letters_per_store_hour; /* stored per store and hour (default 10000) */
    unsigned writers;        /* group-commit writer threads, each with a connection (default 2) */
    unsigned retention_days; /* how far back an import may reach (default 400) */
} pe_collector_config_t;

/* One refused event of a batch. */
typedef struct {
    size_t index;
    char event_id[PE_EVENT_ID_MAX + 1]; /* as sent, "" when absent or not a string */
    pe_refusal_t error;
} pe_collector_rejection_t;

/* The outcome of one batch, valid inside the done callback. */
typedef struct {
    int rc;          /* 0 = committed; PE_EUNAVAIL / PE_ETIMEOUT = nothing stored, retry */
    size_t accepted; /* valid events (stored now, or already stored earlier: retries count) */
    size_t nrejected;
    const pe_collector_rejection_t *rejected;
} pe_collector_result_t;

/* Called exactly once per batch that pe_collector_ingest took, from a writer thread, after
 * COMMIT (rc = 0) or ROLLBACK; must not block. */
typedef void (*pe_collector_done_fn)(void *arg, const pe_collector_result_t *result);

/* Creates the collector and starts its writer threads. Returns NULL on ENOMEM or when a thread
 * cannot start. */
pe_collector_t *pe_collector_new(const pe_collector_config_t *cfg);
/* Stops taking batches (ingest then answers PE_EUNAVAIL), commits what is queued, answers
 * every batch and joins the writers. The object stays valid for late callers until freed. */
void pe_collector_stop(pe_collector_t *c);
/* Stops (if not stopped) and frees. Accepts NULL. */
void pe_collector_free(pe_collector_t *c);

/* Ingests a batch for store_id: `events` is a JSON array of event objects (borrowed; the
 * collector copies what it keeps). batch_sent_at_us is the envelope's sentAt (0 = none; ignored
 * on import), received_at_us the server's receive time. Returns 0 when done() will be called,
 * or a PE_E… code when it will not (PE_EINVAL: not an array; PE_ETOOBIG: more than
 * PE_COLLECTOR_MAX_EVENTS; PE_EUNAVAIL: queue full or stopped). Thread-safe. */
int pe_collector_ingest(pe_collector_t *c, const char *store_id, pe_collector_mode_t mode,
                        const cJSON *events, int64_t batch_sent_at_us, int64_t received_at_us,
                        pe_collector_done_fn done, void *arg);

/* The same, waiting for the outcome (for commands, not for HTTP threads): returns 0 once the
 * batch is committed, with *accepted and *rejected counted (either may be NULL), or the PE_E…
 * code of pe_collector_ingest or of the commit. Thread-safe; any number may wait at once. */
int pe_collector_ingest_wait(pe_collector_t *c, const char *store_id, pe_collector_mode_t mode,
                             const cJSON *events, int64_t received_at_us, size_t *accepted,
                             size_t *rejected);

typedef struct {
    uint64_t batches_total;
    uint64_t events_stored_total;
    uint64_t events_duplicate_total;
    uint64_t events_rejected_total;
    uint64_t commits_total;
    uint64_t commit_failures_total;
    uint64_t queue_full_total;
    uint64_t store_share_full_total; /* refused: the store held its share of a filling queue */
    unsigned writers_running;        /* now: writer threads in their loop (the configured number) */
    size_t queued_events;            /* now */
} pe_collector_stats_t;

void pe_collector_stats(pe_collector_t *c, pe_collector_stats_t *out);
/* Appends Prometheus text for the collector's counters. */
int pe_collector_metrics(pe_collector_t *c, pe_buf_t *out);

/* Partition maintenance: sets the retention of events to retention_days, creates partitions
 * ahead and retires old ones (pg_partman), trims the dead letter. Takes an advisory lock so only
 * one instance runs it at a time (returns 0 without work when another holds it). */
int pe_collector_maintain(pe_db_pool_t *db, unsigned retention_days, char *err, size_t errlen);

#endif /* PE_COLLECTOR_H */
