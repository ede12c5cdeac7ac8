/*
 * ingest.c — the ingesting half of the collector, run on HTTP threads: validate every event of a
 * batch, correct its clock skew, and encode accepted events and dead letters as COPY text, so
 * the writer thread only streams bytes to PostgreSQL.
 *
 * Invariants:
 *  1. Every element of the batch ends in exactly one of: an accepted row, a dead-letter row
 *     (with its index, eventId when it has one, code and message).
 *  2. Nothing here keeps a pointer into the caller's cJSON tree after returning.
 *  3. Clock skew: occurred_at = receivedAt − (sentAt − timestamp) when sentAt is known (the
 *     event's own, else the batch's), else timestamp; outside [receivedAt − 7 days,
 *     receivedAt + 1 hour] the event is refused (too_old / in_future).
 */
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
    free(job);
}

/* "2026-11-24 10:00:00.123456+00", the text form COPY reads for timestamptz. */
static void format_ts(int64_t unix_us, char *out, size_t outlen)
{
    int64_t secs = unix_us >= 0 ? unix_us / 1000000 : (unix_us - 999999) / 1000000;
    int64_t frac = unix_us - secs * 1000000;
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

static void format_day(int64_t unix_us, char *out, size_t outlen)
{
    time_t t = (time_t)(unix_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int put_field(pe_buf_t *b, const char *s, bool last)
{
    int rc = s ? pe_db_copy_escape(b, s, strlen(s)) : pe_buf_append(b, "\\N", 2);
    return rc | pe_buf_append(b, last ? "\n" : "\t", 1);
}

static int put_json(pe_buf_t *b, const cJSON *j, bool last)
{
    if (!j)
        return put_field(b, NULL, last);
    char *text = cJSON_PrintUnformatted(j);
    if (!text)
        return PE_ENOMEM;
    int rc = put_field(b, text, last);
    free(text);
    return rc;
}

static int encode_event(collector_job_t *job, const pe_event_t *ev, int64_t occurred_us)
{
    char occurred[64], client[64], received[64], day[32], funnel[4];
    char event_id[PE_EVENT_UUID_LEN + 1];
    format_ts(occurred_us, occurred, sizeof occurred);
    format_ts(ev->timestamp_us, client, sizeof client);
    format_ts(job->received_at_us, received, sizeof received);
    /* The idempotency key's day: the client's own timestamp (identical on every retry), clamped
     * into the window whose key partitions exist (0002_events.sql, invariant 2). */
    int64_t key_us = ev->timestamp_us;
    int64_t lo = job->received_at_us - 8 * US_PER_DAY, hi = job->received_at_us + 2 * US_PER_DAY;
    key_us = key_us < lo ? lo : key_us > hi ? hi : key_us;
    format_day(key_us, day, sizeof day);
    snprintf(funnel, sizeof funnel, "%d", (int)ev->def->funnel_step);
    pe_event_id_canonical(ev->event_id, event_id);

    pe_buf_t *b = &job->events_copy;
    collector_row_t *row = &job->rows[job->nevents];
    row->offset = b->len;
    snprintf(row->key_day, sizeof row->key_day, "%.10s", day);
    memcpy(row->event_id, event_id, sizeof row->event_id);
    int rc = put_field(b, job->store_id, false);
    rc |= put_field(b, occurred, false);
    rc |= put_field(b, event_id, false);
    rc |= put_field(b, ev->name, false);
    rc |= put_field(b, funnel, false);
    rc |= put_field(b, ev->session_id, false);
    rc |= put_field(b, ev->anonymous_id, false);
    rc |= put_field(b, ev->user_id, false);
    rc |= put_field(b, client, false);
    rc |= put_field(b, received, false);
    rc |= put_field(b, ev->page_path, false);
    rc |= put_field(b, ev->utm_source, false);
    rc |= put_field(b, ev->utm_medium, false);
    rc |= put_field(b, ev->utm_campaign, false);
    rc |= put_field(b, ev->device_type, false);
    rc |= put_json(b, ev->context, false);
    rc |= put_json(b, ev->properties, false);
    rc |= put_json(b, ev->custom, true);
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
    snprintf(r->error.code, sizeof r->error.code, "%s", code);
    snprintf(r->error.message, sizeof r->error.message, "%s", message);

    char received[64], idx[24];
    format_ts(job->received_at_us, received, sizeof received);
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
    int rc = put_field(b, job->store_id, false);
    rc |= put_field(b, received, false);
    rc |= put_field(b, idx, false);
    rc |= put_field(b, r->event_id[0] ? r->event_id : NULL, false);
    rc |= put_field(b, code, false);
    rc |= put_field(b, message, false);
    rc |= put_field(b, raw, true);
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
    pe_event_error_t err;
    if (pe_event_validate(item, batch_sent_at_us, &ev, &err) != 0)
        return reject(job, index, item, err.code, err.message);

    if (ev.store_id && strcasecmp(ev.store_id, job->store_id) != 0)
        return reject(job, index, item, "store_mismatch",
                      "storeId: does not match the store of the key");

    int64_t occurred = ev.timestamp_us;
    if (ev.sent_at_us > 0)
        occurred = job->received_at_us - (ev.sent_at_us - ev.timestamp_us);
    if (occurred < job->received_at_us - (int64_t)PE_COLLECTOR_MAX_AGE_S * 1000000)
        return reject(job, index, item, "too_old",
                      "timestamp: more than 7 days old (after clock-skew correction)");
    if (occurred > job->received_at_us + (int64_t)PE_COLLECTOR_MAX_AHEAD_S * 1000000)
        return reject(job, index, item, "in_future",
                      "timestamp: more than 1 hour ahead (after clock-skew correction)");
    int rc = encode_event(job, &ev, occurred);
    if (rc == 0)
        job->accepted++;
    return rc;
}

int pe_collector_ingest(pe_collector_t *c, const char *store_id, const cJSON *events,
                        int64_t batch_sent_at_us, int64_t received_at_us, pe_collector_done_fn done,
                        void *arg)
{
    if (!cJSON_IsArray(events))
        return PE_EINVAL;
    int count = cJSON_GetArraySize(events);
    if (count > PE_COLLECTOR_MAX_EVENTS)
        return PE_EINVAL;

    int rc = PE_ENOMEM;
    collector_job_t *job = calloc(1, sizeof *job);
    if (!job)
        goto out;
    job->rejected = calloc((size_t)count + 1, sizeof *job->rejected);
    job->rows = calloc((size_t)count + 1, sizeof *job->rows);
    if (!job->rejected || !job->rows)
        goto out;
    snprintf(job->store_id, sizeof job->store_id, "%s", store_id);
    job->received_at_us = received_at_us;
    job->done = done;
    job->arg = arg;

    size_t index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, events)
    {
        rc = ingest_one(job, index++, item, batch_sent_at_us);
        if (rc != 0)
            goto out;
    }
    rc = collector_enqueue(c, job);
    if (rc == 0)
        job = NULL; /* the writer owns it now */
out:
    collector_job_free(job);
    return rc;
}
