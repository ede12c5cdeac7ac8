/*
 * ingest.c — the ingesting half of the collector, run on HTTP threads: validate every event of a
 * batch, correct its clock skew, and encode accepted events as binary COPY rows and dead letters
 * as COPY text (db/copy_encode.c), so a writer thread only streams bytes to PostgreSQL.
 *
 * Invariants:
 *  1. Every element of the batch ends in exactly one of: an accepted row, a dead-letter row
 *     (with its index, eventId when it has one, code and message).
 *  2. Nothing here keeps a pointer into the caller's cJSON tree after returning.
 *  3. Live traffic: occurred_at = receivedAt − (sentAt − timestamp) when sentAt is known (the
 *     event's own, else the batch's), else timestamp; outside [receivedAt − 7 days,
 *     receivedAt + 1 hour] the event is refused (too_old / in_future). An import takes the
 *     timestamp as sent, within [receivedAt − 400 days, receivedAt + 1 hour], and lists the
 *     UTC days it touches so the writer can make their partitions exist first.
 *  4. Per event, the hot path allocates nothing beyond the job's growing buffers: timestamps
 *     and UUIDs are encoded by arithmetic and JSON values are written straight into the row
 *     (the row encoders are db/copy_encode.c's).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "collector_internal.h"

#define RAW_MAX_BYTES 65536
#define US_PER_DAY    (86400LL * 1000000LL)

void collector_job_free(collector_job_t *job)
{
    if (!job)
        return;
    pe_buf_free(&job->events_copy);
    pe_buf_free(&job->rejects_copy);
    free(job->rejected);
    free(job->rows);
    free(job->days);
    free(job);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* 16 bytes from a canonical (lower-case, hyphenated) UUID. */
static int uuid_bytes(const char *text, unsigned char out[16])
{
    size_t k = 0;
    for (const char *p = text; *p && k < 32; p++) {
        if (*p == '-')
            continue;
        int v = *p >= '0' && *p <= '9'   ? *p - '0'
                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                         : -1;
        if (v < 0)
            return PE_EINVAL;
        out[k / 2] = (unsigned char)(k % 2 ? (out[k / 2] << 4) | v : v);
        k++;
    }
    return k == 32 ? 0 : PE_EINVAL;
}

/* Remembers an import's UTC day (a short list: a batch spans few days). */
static int note_day(collector_job_t *job, int32_t day)
{
    for (size_t i = 0; i < job->ndays; i++)
        if (job->days[i] == day)
            return 0;
    /* room for 4, then doubled whenever full (the count is a power of two) */
    if (job->ndays == 0 || (job->ndays >= 4 && (job->ndays & (job->ndays - 1)) == 0)) {
        int32_t *days = realloc(job->days, (job->ndays ? job->ndays * 2 : 4) * sizeof *days);
        if (!days)
            return PE_ENOMEM;
        job->days = days;
    }
    job->days[job->ndays++] = day;
    return 0;
}

static int encode_event(collector_job_t *job, const pe_event_t *ev, int64_t occurred_us)
{
    char day[PE_DB_TEXT_DATE_LEN];
    char event_id[PE_EVENT_UUID_LEN + 1];
    unsigned char event_uuid[16];
    /* The idempotency key's day: the client's own timestamp (identical on every retry). Live
     * traffic clamps it into the window whose key partitions exist (0002_events.sql, invariant
     * 2); an import makes its days' partitions exist instead (collector_ensure_partitions). */
    int64_t key_us = ev->timestamp_us;
    if (job->mode == PE_COLLECTOR_LIVE) {
        int64_t lo = job->received_at_us - 8 * US_PER_DAY;
        int64_t hi = job->received_at_us + 2 * US_PER_DAY;
        key_us = key_us < lo ? lo : key_us > hi ? hi : key_us;
    } else {
        int rc = note_day(job, (int32_t)floor_div(occurred_us, US_PER_DAY));
        if (rc != 0)
            return rc;
    }
    pe_db_text_date(key_us, day);
    pe_events_id_canonical(ev->event_id, event_id);
    if (uuid_bytes(event_id, event_uuid) != 0)
        return PE_EINTERNAL; /* validation let through an id that is not a UUID */

    pe_buf_t *b = &job->events_copy;
    collector_row_t *row = &job->rows[job->nevents];
    row->offset = b->len;
    memcpy(row->key_day, day, sizeof row->key_day);
    if (job->mode == PE_COLLECTOR_IMPORT)
        pe_db_text_timestamptz(occurred_us, row->occurred);
    memcpy(row->event_id, event_id, sizeof row->event_id);
    /* the columns of COLLECTOR_EVENT_COLUMNS, in order */
    int rc = pe_db_copy_bin_row(b, COLLECTOR_EVENT_NCOLUMNS);
    rc |= pe_db_copy_bin_uuid(b, job->store_uuid);
    rc |= pe_db_copy_bin_timestamptz(b, occurred_us);
    rc |= pe_db_copy_bin_uuid(b, event_uuid);
    rc |= pe_db_copy_bin_text(b, ev->name);
    rc |= pe_db_copy_bin_int2(b, (int16_t)ev->def->funnel_step);
    rc |= pe_db_copy_bin_text(b, ev->session_id);
    rc |= pe_db_copy_bin_text(b, ev->anonymous_id);
    rc |= pe_db_copy_bin_text(b, ev->user_id);
    rc |= pe_db_copy_bin_timestamptz(b, ev->timestamp_us);
    rc |= pe_db_copy_bin_timestamptz(b, job->received_at_us);
    rc |= pe_db_copy_bin_text(b, ev->page_path);
    rc |= pe_db_copy_bin_text(b, ev->utm_source);
    rc |= pe_db_copy_bin_text(b, ev->utm_medium);
    rc |= pe_db_copy_bin_text(b, ev->utm_campaign);
    rc |= pe_db_copy_bin_text(b, ev->device_type);
    rc |= pe_db_copy_bin_jsonb(b, ev->context);
    rc |= pe_db_copy_bin_jsonb(b, ev->properties);
    rc |= pe_db_copy_bin_jsonb(b, ev->custom);
    if (rc != 0)
        return PE_ENOMEM;
    row->len = b->len - row->offset;
    job->nevents++;
    return 0;
}

static int reject(collector_job_t *job, size_t index, const cJSON *item, const char *code,
                  const char *message)
{
    pe_collector_rejection_t *r = &job->rejected[job->nrejects];
    memset(r, 0, sizeof *r);
    r->index = index;
    const cJSON *id =
        cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "eventId") : NULL;
    if (cJSON_IsString(id))
        snprintf(r->event_id, sizeof r->event_id, "%s", id->valuestring);
    pe_refuse(&r->error, PE_EINVAL, code, "%s", message);

    char received[PE_DB_TEXT_TIMESTAMPTZ_LEN], idx[24];
    pe_db_text_timestamptz(job->received_at_us, received);
    snprintf(idx, sizeof idx, "%zu", index);
    char *raw = cJSON_PrintUnformatted(item);
    if (!raw)
        return PE_ENOMEM;
    if (strlen(raw) > RAW_MAX_BYTES) {
        /* keep the head of an oversized event; cut at a UTF-8 boundary */
        size_t cut = RAW_MAX_BYTES;
        while (cut > 0 && ((unsigned char)raw[cut] & 0xC0) == 0x80)
            cut--;
        raw[cut] = '\0';
    }
    pe_buf_t *b = &job->rejects_copy;
    int rc = pe_db_copy_text_field(b, job->store_id, false);
    rc |= pe_db_copy_text_field(b, received, false);
    rc |= pe_db_copy_text_field(b, idx, false);
    rc |= pe_db_copy_text_field(b, r->event_id[0] ? r->event_id : NULL, false);
    rc |= pe_db_copy_text_field(b, code, false);
    rc |= pe_db_copy_text_field(b, message, false);
    rc |= pe_db_copy_text_field(b, raw, true);
    free(raw);
    if (rc != 0)
        return PE_ENOMEM;
    job->nrejects++;
    return 0;
}

static int ingest_one(collector_job_t *job, size_t index, const cJSON *item,
                      int64_t batch_sent_at_us)
{
    pe_event_t ev;
    pe_refusal_t err;
    if (pe_events_validate(item, batch_sent_at_us, &ev, &err) != 0)
        return reject(job, index, item, err.code, err.message);

    if (ev.store_id && strcasecmp(ev.store_id, job->store_id) != 0)
        return reject(job, index, item, "store_mismatch",
                      "storeId: does not match the store of the key");

    int64_t occurred = ev.timestamp_us;
    if (job->mode == PE_COLLECTOR_IMPORT) {
        if (occurred < job->received_at_us - (int64_t)job->retention_days * US_PER_DAY)
            return reject(job, index, item, "too_old",
                          "timestamp: older than events are kept (the retention)");
    } else {
        if (ev.sent_at_us > 0)
            occurred = job->received_at_us - (ev.sent_at_us - ev.timestamp_us);
        if (occurred < job->received_at_us - (int64_t)PE_COLLECTOR_MAX_AGE_S * 1000000)
            return reject(job, index, item, "too_old",
                          "timestamp: more than 7 days old (after clock-skew correction); send "
                          "history to /v1/import with a secret key");
    }
    if (occurred > job->received_at_us + (int64_t)PE_COLLECTOR_MAX_AHEAD_S * 1000000)
        return reject(job, index, item, "in_future",
                      "timestamp: more than 1 hour ahead (after clock-skew correction)");
    int rc = encode_event(job, &ev, occurred);
    if (rc == 0)
        job->accepted++;
    return rc;
}

int collector_job_build(const char *store_id, pe_collector_mode_t mode, unsigned retention_days,
                        const cJSON *events, int64_t batch_sent_at_us, int64_t received_at_us,
                        collector_job_t **out)
{
    *out = NULL;
    if (!cJSON_IsArray(events))
        return PE_EINVAL;
    int count = cJSON_GetArraySize(events);
    if (count > PE_COLLECTOR_MAX_EVENTS)
        return PE_ETOOBIG;

    int rc = PE_ENOMEM;
    collector_job_t *job = calloc(1, sizeof *job);
    if (!job)
        goto out;
    job->rejected = calloc((size_t)count + 1, sizeof *job->rejected);
    job->rows = calloc((size_t)count + 1, sizeof *job->rows);
    /* a storefront event encodes to about 1 KB of COPY text: one allocation, not ten doublings */
    if (!job->rejected || !job->rows || pe_buf_reserve(&job->events_copy, (size_t)count * 1024))
        goto out;
    snprintf(job->store_id, sizeof job->store_id, "%s", store_id);
    if (uuid_bytes(job->store_id, job->store_uuid) != 0) {
        rc = PE_EINVAL; /* the caller's store id, from the key: always a UUID */
        goto out;
    }
    job->mode = mode;
    job->retention_days = retention_days;
    job->received_at_us = received_at_us;
    if (mode == PE_COLLECTOR_IMPORT)
        batch_sent_at_us = 0; /* history is taken as sent */

    rc = 0;
    size_t index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, events)
    {
        rc = ingest_one(job, index++, item, batch_sent_at_us);
        if (rc != 0)
            goto out;
    }
    *out = job;
    job = NULL;
out:
    collector_job_free(job);
    return rc;
}

int pe_collector_ingest(pe_collector_t *c, const char *store_id, pe_collector_mode_t mode,
                        const cJSON *events, int64_t batch_sent_at_us, int64_t received_at_us,
                        pe_collector_done_fn done, void *arg)
{
    collector_job_t *job = NULL;
    int rc = collector_job_build(store_id, mode, collector_retention_days(c), events,
                                 batch_sent_at_us, received_at_us, &job);
    if (rc != 0)
        return rc;
    job->done = done;
    job->arg = arg;
    rc = collector_enqueue(c, job);
    if (rc != 0)
        collector_job_free(job); /* refused: the caller answers 503 */
    return rc;
}

/* pe_collector_ingest_wait: a done callback that hands the outcome to the waiting thread. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int rc;
    size_t accepted, rejected;
} ingest_waiter_t;

static void waiter_done(void *arg, const pe_collector_result_t *result)
{
    ingest_waiter_t *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = result->rc;
    w->accepted = result->accepted;
    w->rejected = result->nrejected;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int pe_collector_ingest_wait(pe_collector_t *c, const char *store_id, pe_collector_mode_t mode,
                             const cJSON *events, int64_t received_at_us, size_t *accepted,
                             size_t *rejected)
{
    ingest_waiter_t w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int rc = pe_collector_ingest(c, store_id, mode, events, 0, received_at_us, waiter_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = w.rc;
    }
    if (accepted)
        *accepted = rc == 0 ? w.accepted : 0;
    if (rejected)
        *rejected = rc == 0 ? w.rejected : 0;
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}
