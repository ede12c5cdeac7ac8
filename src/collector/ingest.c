/*
 * ingest.c — the ingesting half of the collector, run on HTTP threads: validate every event of a
 * batch, correct its clock skew, and encode accepted events as binary COPY rows and dead letters
 * as COPY text, so the writer thread only streams bytes to PostgreSQL.
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
 *     and UUIDs are encoded by arithmetic and JSON values are written straight into the row.
 */
#include <math.h>
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

static char *put_digits(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

/* "2026-11-24", the text form COPY reads for date; out has room for 11 bytes. Runs for every
 * event, so it is arithmetic rather than gmtime_r (which takes glibc's time-zone lock) and
 * snprintf. Years outside 0…9999 cannot reach it: the collector's windows are days wide. */
static size_t format_day(int64_t unix_us, char *out)
{
    int64_t y;
    int m, d;
    pe_civil_from_days(floor_div(unix_us, US_PER_DAY), &y, &m, &d);
    char *p = put_digits(out, (uint64_t)(y < 0 ? 0 : y > 9999 ? 9999 : y), 4);
    *p++ = '-';
    p = put_digits(p, (uint64_t)m, 2);
    *p++ = '-';
    p = put_digits(p, (uint64_t)d, 2);
    *p = '\0';
    return (size_t)(p - out);
}

/* "2026-11-24 10:00:00.123456+00", the text form COPY reads for timestamptz (32 bytes). */
static void format_ts(int64_t unix_us, char *out)
{
    char *p = out + format_day(unix_us, out);
    int64_t us = unix_us - floor_div(unix_us, US_PER_DAY) * US_PER_DAY;
    int64_t secs = us / 1000000;
    *p++ = ' ';
    p = put_digits(p, (uint64_t)(secs / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (uint64_t)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (uint64_t)(secs % 60), 2);
    *p++ = '.';
    p = put_digits(p, (uint64_t)(us % 1000000), 6);
    memcpy(p, "+00", 4);
}

static int put_field(pe_buf_t *b, const char *s, bool last)
{
    int rc = s ? pe_db_copy_escape(b, s, strlen(s)) : pe_buf_append(b, "\\N", 2);
    return rc | pe_buf_append(b, last ? "\n" : "\t", 1);
}

/* A JSON string: quotes, backslashes and control bytes escaped, everything else (valid UTF-8,
 * checked on the way in) as it is. One pass, runs of plain bytes appended whole. */
static int put_json_string(pe_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = pe_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc |= pe_buf_append(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"':
            rc |= pe_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc |= pe_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc |= pe_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc |= pe_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc |= pe_buf_append(b, "\\t", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rc |= pe_buf_append(b, u, sizeof u);
        }
        }
    }
    rc |= pe_buf_append(b, run, (size_t)(s - run));
    return rc | pe_buf_append(b, "\"", 1);
}

static int put_json_number(pe_buf_t *b, double d)
{
    char text[32];
    int n;
    if (!isfinite(d))
        return pe_buf_append(b, "null", 4); /* as cJSON prints it */
    if (d == trunc(d) && fabs(d) < 1e15) {
        uint64_t v = (uint64_t)(d < 0 ? -d : d);
        char *end = text + sizeof text, *p = end;
        do
            *--p = (char)('0' + v % 10);
        while (v /= 10);
        if (d < 0)
            *--p = '-';
        return pe_buf_append(b, p, (size_t)(end - p));
    }
    /* the shortest of 15 or 17 significant digits that reads back as the same double */
    n = snprintf(text, sizeof text, "%.15g", d);
    if (strtod(text, NULL) != d)
        n = snprintf(text, sizeof text, "%.17g", d);
    return pe_buf_append(b, text, (size_t)n);
}

static int put_json_value(pe_buf_t *b, const cJSON *j)
{
    int rc = 0;
    if (cJSON_IsString(j))
        return put_json_string(b, j->valuestring);
    if (cJSON_IsNumber(j))
        return put_json_number(b, j->valuedouble);
    if (cJSON_IsTrue(j))
        return pe_buf_append(b, "true", 4);
    if (cJSON_IsFalse(j))
        return pe_buf_append(b, "false", 5);
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        bool object = cJSON_IsObject(j);
        rc |= pe_buf_append(b, object ? "{" : "[", 1);
        for (const cJSON *item = j->child; item; item = item->next) {
            if (item != j->child)
                rc |= pe_buf_append(b, ",", 1);
            if (object) {
                rc |= put_json_string(b, item->string);
                rc |= pe_buf_append(b, ":", 1);
            }
            rc |= put_json_value(b, item); /* depth is bounded by the parser (pe_json_parse) */
        }
        return rc | pe_buf_append(b, object ? "}" : "]", 1);
    }
    return pe_buf_append(b, "null", 4);
}

/* ---- binary COPY fields (PostgreSQL's "binary" format, big-endian) ----------------------------
 * A row: int16 field count, then per field an int32 length (-1 for NULL) and that many bytes.
 * uuid: 16 bytes; timestamptz: int64 µs since 2000-01-01 UTC; smallint: int16; text: the UTF-8
 * bytes (no NUL: validation refuses \u0000); jsonb: a version byte (1) and the JSON text. No
 * escaping and no parsing of text forms on either side. */

#define PG_EPOCH_UNIX_US 946684800000000LL /* 2000-01-01T00:00:00Z */

static int put_be(pe_buf_t *b, uint64_t v, int bytes)
{
    unsigned char out[8];
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)(v & 0xff);
    return pe_buf_append(b, out, (size_t)bytes);
}

static int put_bin_null(pe_buf_t *b)
{
    return put_be(b, UINT32_MAX, 4);
}

static int put_bin_text(pe_buf_t *b, const char *s)
{
    if (!s)
        return put_bin_null(b);
    size_t n = strlen(s);
    return put_be(b, (uint32_t)n, 4) | pe_buf_append(b, s, n);
}

static int put_bin_uuid(pe_buf_t *b, const unsigned char uuid[16])
{
    return put_be(b, 16, 4) | pe_buf_append(b, uuid, 16);
}

static int put_bin_ts(pe_buf_t *b, int64_t unix_us)
{
    return put_be(b, 8, 4) | put_be(b, (uint64_t)(unix_us - PG_EPOCH_UNIX_US), 8);
}

/* The JSON text after the version byte; the length is patched in once it is known. */
static int put_bin_jsonb(pe_buf_t *b, const cJSON *j)
{
    if (!j)
        return put_bin_null(b);
    size_t at = b->len;
    int rc = put_be(b, 0, 4) | pe_buf_append(b, "\1", 1) | put_json_value(b, j);
    if (rc != 0)
        return rc;
    size_t n = b->len - at - 4;
    for (int i = 3; i >= 0; i--, n >>= 8)
        b->data[at + (size_t)i] = (char)(n & 0xff);
    return 0;
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
    char day[11];
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
    format_day(key_us, day);
    pe_event_id_canonical(ev->event_id, event_id);
    if (uuid_bytes(event_id, event_uuid) != 0)
        return PE_EINTERNAL; /* validation let through an id that is not a UUID */

    pe_buf_t *b = &job->events_copy;
    collector_row_t *row = &job->rows[job->nevents];
    row->offset = b->len;
    memcpy(row->key_day, day, sizeof row->key_day);
    if (job->mode == PE_COLLECTOR_IMPORT)
        format_ts(occurred_us, row->occurred);
    memcpy(row->event_id, event_id, sizeof row->event_id);
    /* the columns of COLLECTOR_EVENT_COLUMNS, in order */
    int rc = put_be(b, COLLECTOR_EVENT_NCOLUMNS, 2);
    rc |= put_bin_uuid(b, job->store_uuid);
    rc |= put_bin_ts(b, occurred_us);
    rc |= put_bin_uuid(b, event_uuid);
    rc |= put_bin_text(b, ev->name);
    rc |= put_be(b, 2, 4) | put_be(b, (uint16_t)ev->def->funnel_step, 2);
    rc |= put_bin_text(b, ev->session_id);
    rc |= put_bin_text(b, ev->anonymous_id);
    rc |= put_bin_text(b, ev->user_id);
    rc |= put_bin_ts(b, ev->timestamp_us);
    rc |= put_bin_ts(b, job->received_at_us);
    rc |= put_bin_text(b, ev->page_path);
    rc |= put_bin_text(b, ev->utm_source);
    rc |= put_bin_text(b, ev->utm_medium);
    rc |= put_bin_text(b, ev->utm_campaign);
    rc |= put_bin_text(b, ev->device_type);
    rc |= put_bin_jsonb(b, ev->context);
    rc |= put_bin_jsonb(b, ev->properties);
    rc |= put_bin_jsonb(b, ev->custom);
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

    char received[32], idx[24];
    format_ts(job->received_at_us, received);
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
        return PE_EINVAL;

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
