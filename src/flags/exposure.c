/*
 * exposure.c — experiment.exposure.assigned events for evaluations of experiment and autopilot
 * flags, through the collector's own write path (no HTTP call to itself), at most one per
 * (store, flag, unit, UTC day).
 *
 *   evaluation with .exposure ──fingerprint seen today?──yes──▶ counted, nothing sent
 *        │ no
 *        ▼
 *   event {eventId = UUID from SHA-256("exposure:" S ":" flag ":" unit ":" day), …}
 *        ──▶ pe_collector_ingest (LIVE, queued; the request does not wait) ──▶ COPY … COMMIT
 *
 * Why the UTC day and not the store's local day: the collector's idempotency key is
 * (store, UTC day of the event's timestamp, eventId) (0002_events.sql); an id derived from a
 * local day would straddle two UTC key days and be stored twice by two instances.
 *
 * Invariants:
 *  1. The in-memory dedupe table is bounded (FLAGS_DEDUPE_SLOTS fingerprints, direct-mapped,
 *     lock-free): a collision can only let a duplicate through, which the collector's eventId
 *     idempotency then stores once; it never suppresses an exposure of another day.
 *  2. The answer to the evaluation never waits for the exposure: pe_collector_ingest only
 *     queues, and a full queue drops the exposure (counted) rather than delaying the reply.
 *  3. A unit that cannot be an event id (more than 64 bytes, control characters) is counted as
 *     skipped, never sent to be refused into the dead letter.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "flags/flags_internal.h"

#define US_PER_DAY (86400LL * 1000000)

static void digest(const char *store_id, const char *flag_key, const char *unit, int64_t day,
                   unsigned char d[crypto_hash_sha256_BYTES])
{
    char prefix[160];
    crypto_hash_sha256_state st;
    int n = snprintf(prefix, sizeof prefix, "exposure:%s:%s:", store_id, flag_key);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(
        &st, (const unsigned char *)prefix,
        (unsigned long long)(n < (int)sizeof prefix ? n : (int)sizeof prefix - 1));
    crypto_hash_sha256_update(&st, (const unsigned char *)unit, strlen(unit));
    char tail[32];
    n = snprintf(tail, sizeof tail, ":%lld", (long long)day);
    crypto_hash_sha256_update(&st, (const unsigned char *)tail, (unsigned long long)n);
    crypto_hash_sha256_final(&st, d);
}

static void uuid_from(const unsigned char d[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    memcpy(b, d, 16);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x80); /* version 8: custom (RFC 9562) */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* the RFC 9562 variant */
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void pe_flags_exposure_id(const char *store_id, const char *flag_key, const char *unit, int64_t day,
                          char out[37])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    digest(store_id, flag_key, unit, day, d);
    uuid_from(d, out);
}

static bool usable_id(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= PE_EVENT_ID_MAX && !pe_text_has_control(s, n);
}

static void on_stored(void *arg, const pe_collector_result_t *result)
{
    pe_flags_t *f = arg;
    if (result->rc == 0) {
        atomic_fetch_add(&f->exp_stored, result->accepted);
        atomic_fetch_add(&f->exp_failed, result->nrejected);
    } else {
        size_t n = result->accepted + result->nrejected;
        atomic_fetch_add(&f->exp_failed, n ? n : 1);
    }
}

static cJSON *exposure_event(const char *id, const char *ts, const char *session, const char *unit,
                             const char *flag_key, const char *variant, bool holdout)
{
    cJSON *ev = cJSON_CreateObject(), *props = NULL;
    if (!ev || !cJSON_AddStringToObject(ev, "eventId", id) ||
        !cJSON_AddStringToObject(ev, "name", "experiment.exposure.assigned") ||
        !cJSON_AddStringToObject(ev, "timestamp", ts) ||
        !cJSON_AddStringToObject(ev, "sessionId", session) ||
        !cJSON_AddStringToObject(ev, "anonymousId", unit) ||
        !(props = cJSON_AddObjectToObject(ev, "properties")) ||
        !cJSON_AddStringToObject(props, "flagKey", flag_key) ||
        !cJSON_AddStringToObject(props, "variant", variant)) {
        cJSON_Delete(ev);
        return NULL;
    }
    if (holdout) {
        cJSON *custom = cJSON_AddObjectToObject(ev, "custom");
        if (!custom || !cJSON_AddTrueToObject(custom, "holdout")) {
            cJSON_Delete(ev);
            return NULL;
        }
    }
    return ev;
}

cJSON *pe_flags_exposure_event(const char *store_id, const char *flag_key, const char *variant,
                               bool holdout, const char *unit, const char *session_id,
                               int64_t at_us)
{
    char id[37], ts[40];
    pe_flags_exposure_id(store_id, flag_key, unit, at_us / US_PER_DAY, id);
    pe_time_format_rfc3339(at_us, ts, sizeof ts);
    return exposure_event(id, ts, session_id ? session_id : unit, unit, flag_key, variant, holdout);
}

void pe_flags_record_exposures(pe_flags_t *f, const char *store_id, const pe_flag_context_t *ctx,
                               const pe_flag_eval_t *evals, size_t n)
{
    if (!f->collector || !ctx->targeting_key)
        return;
    size_t wanted = 0;
    for (size_t i = 0; i < n; i++)
        wanted += evals[i].exposure && evals[i].variant >= 0;
    if (!wanted)
        return;
    const char *unit = ctx->targeting_key;
    if (!usable_id(unit)) { /* invariant 3 */
        atomic_fetch_add(&f->exp_skipped, wanted);
        return;
    }
    const char *session = ctx->session_id && usable_id(ctx->session_id) ? ctx->session_id : unit;
    int64_t now = pe_now_unix_us();
    int64_t day = now / US_PER_DAY;
    char ts[40];
    pe_time_format_rfc3339(now, ts, sizeof ts);
    cJSON *batch = NULL;
    uint64_t fps[PE_FLAGS_MAX_PER_STORE > 64 ? 64 : PE_FLAGS_MAX_PER_STORE];
    size_t nfps = 0, sent = 0;
    for (size_t i = 0; i < n; i++) {
        const pe_flag_eval_t *e = &evals[i];
        if (!e->exposure || e->variant < 0)
            continue;
        unsigned char d[crypto_hash_sha256_BYTES];
        digest(store_id, pe_flags_key(e->flag), unit, day, d);
        uint64_t fp = 0;
        for (int k = 16; k < 24; k++)
            fp = fp << 8 | d[k];
        fp |= 1; /* 0 marks an empty slot */
        uint64_t old = atomic_exchange(&f->dedupe[fp & (FLAGS_DEDUPE_SLOTS - 1)], fp);
        if (old == fp) {
            atomic_fetch_add(&f->exp_deduped, 1);
            continue;
        }
        if (sent == PE_COLLECTOR_MAX_EVENTS) {
            atomic_fetch_add(&f->exp_dropped, 1);
            continue;
        }
        char id[37];
        uuid_from(d, id);
        if (!batch)
            batch = cJSON_CreateArray();
        cJSON *ev = batch ? exposure_event(id, ts, session, unit, pe_flags_key(e->flag),
                                           pe_flags_variant_key(e->flag, e->variant), e->holdout)
                          : NULL;
        if (!ev) {
            atomic_fetch_add(&f->exp_dropped, 1);
            continue;
        }
        cJSON_AddItemToArray(batch, ev);
        if (nfps < PE_ARRAY_LEN(fps))
            fps[nfps++] = fp;
        sent++;
    }
    if (!sent) {
        cJSON_Delete(batch);
        return;
    }
    int rc =
        pe_collector_ingest(f->collector, store_id, PE_COLLECTOR_LIVE, batch, 0, now, on_stored, f);
    if (rc == 0) {
        atomic_fetch_add(&f->exp_sent, sent);
    } else {
        atomic_fetch_add(&f->exp_dropped, sent);
        /* forget them, so a later evaluation tries again */
        for (size_t i = 0; i < nfps; i++) {
            uint64_t fp = fps[i];
            atomic_compare_exchange_strong(&f->dedupe[fp & (FLAGS_DEDUPE_SLOTS - 1)], &fp, 0);
        }
    }
    cJSON_Delete(batch);
}
