/*
 * collector_internal.h — what ingest.c (HTTP threads) and writer.c (the writer thread) share:
 * the job that carries one request's rows from validation to COMMIT.
 */
#ifndef PE_COLLECTOR_INTERNAL_H
#define PE_COLLECTOR_INTERNAL_H

#include "pe/collector.h"

/* One accepted event of a job: where its COPY line is, and its idempotency key. */
typedef struct {
    size_t offset, len; /* of its line in events_copy */
    char key_day[11];   /* YYYY-MM-DD */
    char event_id[PE_EVENT_UUID_LEN + 1];
} collector_row_t;

/* One request's batch, encoded for COPY by the ingesting thread so the writer only streams. */
typedef struct collector_job {
    struct collector_job *next;
    char store_id[PE_EVENT_ID_MAX + 1];
    int64_t received_at_us;
    pe_buf_t events_copy; /* COPY text rows for events */
    size_t nevents;
    collector_row_t *rows; /* nevents entries */
    pe_buf_t rejects_copy; /* COPY text rows for events_rejected */
    size_t nrejects;
    size_t dead_letters_dropped; /* over the per-store hourly bound: counted, not kept */
    size_t accepted;
    pe_collector_rejection_t *rejected; /* nrejects entries */
    pe_collector_done_fn done;
    void *arg;
} collector_job_t;

void collector_job_free(collector_job_t *job);
/* Hands a job to the writer (which then owns it). Returns 0 or PE_EUNAVAIL (queue full or
 * stopping; the caller still owns the job). */
int collector_enqueue(pe_collector_t *c, collector_job_t *job);

/* The columns of events, in the order of the COPY lines. */
#define COLLECTOR_EVENT_COLUMNS                                                                    \
    "store_id, occurred_at, event_id, name, funnel_step, session_id, anonymous_id, user_id, "      \
    "client_ts, received_at, page_path, utm_source, utm_medium, utm_campaign, device_type, "       \
    "context, properties, custom"

#endif /* PE_COLLECTOR_INTERNAL_H */
