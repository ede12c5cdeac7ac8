/*
 * collector_internal.h — what ingest.c (HTTP threads) and writer.c (the writer threads) share:
 * the job that carries one request's rows from validation to COMMIT.
 */
#ifndef PE_COLLECTOR_INTERNAL_H
#define PE_COLLECTOR_INTERNAL_H

#include "pe/collector.h"

/* One accepted event of a job: where its COPY line is, and its idempotency key: live events
 * are keyed by (store, key_day, event_id) in event_keys; imported ones by the primary key of
 * events itself, (store, occurred_at, event_id), which lives as long as the event does. */
typedef struct {
    size_t offset, len;                /* of its line in events_copy */
    char key_day[PE_DB_TEXT_DATE_LEN]; /* YYYY-MM-DD */
    char event_id[PE_EVENT_UUID_LEN + 1];
    char occurred[PE_DB_TEXT_TIMESTAMPTZ_LEN]; /* import only: occurred_at, COPY text form */
} collector_row_t;

/* One request's batch, encoded for COPY by the ingesting thread so the writer only streams. */
typedef struct collector_job {
    struct collector_job *next;
    char store_id[PE_EVENT_ID_MAX + 1];
    struct store_share *share;    /* its store's events waiting in the queue (writer.c) */
    unsigned char store_uuid[16]; /* store_id as binary COPY sends it */
    pe_collector_mode_t mode;
    unsigned retention_days; /* import: how far back */
    int64_t received_at_us;
    int64_t queued_us; /* monotonic: when collector_enqueue queued it (the gathering window) */
    /* On import: the UTC days (days since 1970-01-01) of the accepted events, distinct, so the
     * writer can make sure their partitions exist before it stores them. */
    int32_t *days;
    size_t ndays;
    pe_buf_t events_copy; /* binary COPY rows for events (no header, no trailer) */
    size_t nevents;
    collector_row_t *rows; /* nevents entries */
    pe_buf_t rejects_copy; /* text-format COPY rows for events_rejected */
    size_t nrejects;
    size_t dead_letters_dropped; /* over the per-store hourly bound: counted, not kept */
    size_t accepted;
    pe_collector_rejection_t *rejected; /* nrejects entries */
    pe_collector_done_fn done;
    void *arg;
} collector_job_t;

void collector_job_free(collector_job_t *job);
/* Validates every event of a batch, corrects its clock skew and encodes the accepted ones and
 * the dead letters as COPY rows (ingest.c): *out is the job, without done/arg, for
 * collector_enqueue. Returns 0, PE_EINVAL (not an array), PE_ETOOBIG (more than
 * PE_COLLECTOR_MAX_EVENTS) or PE_ENOMEM. */
int collector_job_build(const char *store_id, pe_collector_mode_t mode, unsigned retention_days,
                        const cJSON *events, int64_t batch_sent_at_us, int64_t received_at_us,
                        collector_job_t **out);
/* The collector's configured retention in days (for an import's window). */
unsigned collector_retention_days(const pe_collector_t *c);
/* Makes sure the daily partitions of events exist for every day of the job
 * (import only; a no-op for days already made sure of). Runs outside the commit's transaction
 * on the writer's connection. Returns 0 or a PE_E… code. */
int collector_ensure_partitions(pe_collector_t *c, pe_db_conn_t *conn, const collector_job_t *job);
/* Hands a job to the writer (which then owns it). Returns 0 or PE_EUNAVAIL (queue full or
 * stopping; the caller still owns the job). */
int collector_enqueue(pe_collector_t *c, collector_job_t *job);

/* The columns of events, in the order of the binary COPY rows. */
#define COLLECTOR_EVENT_COLUMNS                                                                    \
    "store_id, occurred_at, event_id, name, funnel_step, session_id, anonymous_id, user_id, "      \
    "client_ts, received_at, page_path, utm_source, utm_medium, utm_campaign, device_type, "       \
    "context, properties, custom"
#define COLLECTOR_EVENT_NCOLUMNS 18
/* The COPY events statement; its data is PE_DB_COPY_BINARY_HEADER, the rows of events_copy
 * and PE_DB_COPY_BINARY_TRAILER. */
#define COLLECTOR_EVENTS_COPY_SQL                                                                  \
    "COPY events (" COLLECTOR_EVENT_COLUMNS ") FROM STDIN (FORMAT binary)"

#endif /* PE_COLLECTOR_INTERNAL_H */
