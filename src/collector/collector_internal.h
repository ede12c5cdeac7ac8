/*
 * collector_internal.h — what ingest.c (HTTP threads) and writer.c (the writer thread) share:
 * the job that carries one request's rows from validation to COMMIT.
 */
#ifndef PE_COLLECTOR_INTERNAL_H
#define PE_COLLECTOR_INTERNAL_H

#include "pe/collector.h"

/* One request's batch, encoded for COPY by the ingesting thread so the writer only streams. */
typedef struct collector_job {
    struct collector_job *next;
    char store_id[PE_EVENT_ID_MAX + 1];
    int64_t received_at_us;
    pe_buf_t events_copy; /* COPY text rows for pe_staging */
    size_t nevents;
    pe_buf_t rejects_copy; /* COPY text rows for events_rejected */
    size_t nrejects;
    size_t accepted;
    pe_collector_rejection_t *rejected; /* nrejects entries */
    pe_collector_done_fn done;
    void *arg;
} collector_job_t;

void collector_job_free(collector_job_t *job);
/* Hands a job to the writer (which then owns it). Returns 0 or PE_EUNAVAIL (queue full or
 * stopping; the caller still owns the job). */
int collector_enqueue(pe_collector_t *c, collector_job_t *job);

/* The columns of pe_staging, in COPY order: events' columns plus key_day. */
#define COLLECTOR_STAGING_COLUMNS                                                                  \
    "store_id, occurred_at, event_id, name, funnel_step, session_id, anonymous_id, user_id, "      \
    "client_ts, received_at, page_path, utm_source, utm_medium, utm_campaign, device_type, "       \
    "context, properties, custom, key_day"

#endif /* PE_COLLECTOR_INTERNAL_H */
