/*
 * fuzz_segment.c — libFuzzer target for the mapping of Segment / e-commerce v2 request bodies to
 * native events (pe_events_segment_check_body, pe_events_segment_map): what stands between
 * POST /v1/batch, /v1/track, /v1/page, /v1/identify and the collector. The first byte picks the
 * route (batch, track, page, identify), the rest is the body.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. The verdict is 0, PE_EINVAL or PE_ETOOBIG; a refusal has the code invalid_request or
 *     payload_too_large, a non-empty NUL-terminated valid-UTF-8 message, and hands out nothing.
 *  2. Pure: mapping twice with the same inputs gives the same events, byte for byte.
 *  3. An acceptance gives an array of one event per message (per batch element; one for a
 *     single-message route) that prints as valid UTF-8 JSON, and every event either passes the
 *     event validator or is refused by it with a code and message (never a crash).
 *  4. When the mapping wants the store's currency, mapping again with one gives the same number
 *     of events and no longer wants it.
 *
 * The input is copied into an exactly-sized heap buffer so a read past its end is an ASan error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/events.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_segment: invariant failed at line %d: %s\n", __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const ROUTES[] = {NULL, "track", "page", "identify"};

static void check_refusal(int rc, const pe_refusal_t *err, const pe_events_segment_out_t *out)
{
    CHECK(rc == PE_EINVAL || rc == PE_ETOOBIG);
    CHECK(strcmp(err->code, rc == PE_EINVAL ? "invalid_request" : "payload_too_large") == 0);
    CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
    size_t n = strlen(err->message);
    CHECK(n > 0 && pe_utf8_valid(err->message, n));
    CHECK(out == NULL || out->events == NULL);
}

static char *map_printed(const cJSON *body, const char *type, const pe_events_segment_in_t *in,
                         pe_events_segment_out_t *out, int *rc)
{
    pe_refusal_t err;
    *rc = pe_events_segment_map(body, type, in, out, &err);
    CHECK(*rc != PE_ENOMEM);
    if (*rc != 0) {
        check_refusal(*rc, &err, out);
        return NULL;
    }
    CHECK(cJSON_IsArray(out->events));
    char *printed = cJSON_PrintUnformatted(out->events);
    CHECK(printed != NULL);
    return printed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *type = ROUTES[data[0] % PE_ARRAY_LEN(ROUTES)];
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text)
        abort();
    if (len)
        memcpy(text, data + 1, len);
    cJSON *body = NULL;
    char why[128];
    if (pe_json_parse(text, len, &body, why, sizeof why) != 0) {
        free(text);
        return 0;
    }
    pe_refusal_t err;
    int rc = pe_events_segment_check_body(body, type, &err);
    if (rc != 0) {
        check_refusal(rc, &err, NULL);
        goto out;
    }
    pe_events_segment_in_t in = {.store_id = "00000000-0000-4000-8000-000000000001",
                                 .store_currency = NULL,
                                 .received_at_us = 1795000000000000LL};
    memset(in.seed, 7, sizeof in.seed);
    pe_events_segment_out_t a = {0}, b = {0};
    int rc_b;
    char *pa = map_printed(body, type, &in, &a, &rc);
    char *pb = map_printed(body, type, &in, &b, &rc_b);
    CHECK(rc == rc_b);
    if (rc == 0) {
        CHECK(strcmp(pa, pb) == 0 && a.batch_sent_at_us == b.batch_sent_at_us &&
              a.wants_store_currency == b.wants_store_currency);
        CHECK(pe_utf8_valid(pa, strlen(pa)));
        const cJSON *batch = cJSON_GetObjectItemCaseSensitive(body, "batch");
        int want = type ? 1 : cJSON_GetArraySize(batch);
        CHECK(cJSON_GetArraySize(a.events) == want);
        const cJSON *ev;
        cJSON_ArrayForEach(ev, a.events)
        {
            pe_event_t e;
            pe_refusal_t verr;
            if (pe_events_validate(ev, a.batch_sent_at_us, &e, &verr) != 0)
                CHECK(verr.code[0] != '\0' && verr.message[0] != '\0');
        }
        if (a.wants_store_currency) {
            pe_events_segment_out_t c = {0};
            in.store_currency = "EUR";
            int rc_c;
            char *pc = map_printed(body, type, &in, &c, &rc_c);
            CHECK(rc_c == 0 && !c.wants_store_currency);
            CHECK(cJSON_GetArraySize(c.events) == want);
            free(pc);
            cJSON_Delete(c.events);
        }
    }
    free(pa);
    free(pb);
    cJSON_Delete(a.events);
    cJSON_Delete(b.events);
out:
    cJSON_Delete(body);
    free(text);
    return 0;
}
