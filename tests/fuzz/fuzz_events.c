/*
 * fuzz_events.c — libFuzzer target for event validation: the JSON guard (pe_json_parse), the
 * batch envelope {"events":[…],"sentAt":…} or a single event, pe_events_validate on each element,
 * and the RFC 3339 parser on short inputs.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. pe_events_validate returns 0 or PE_EINVAL, and the same verdict, code and message when run
 *     twice on the same element (it is pure).
 *  2. A refusal has a code from the list in pe/events.h and a non-empty, NUL-terminated,
 *     valid-UTF-8 message "<path>: …", and leaves *ev zeroed.
 *  3. An acceptance has non-NULL event_id (8-4-4-4-12 hex), name (resolving to ev.def),
 *     session_id and anonymous_id (1..PE_EVENT_ID_MAX bytes), properties (an object); the
 *     timestamp parses to timestamp_us; device_type is NULL or one of the four types; the event
 *     serialises to at most PE_EVENT_MAX_BYTES; sent_at_us falls back to the batch's.
 *  4. pe_time_parse_rfc3339 either refuses or returns a time inside years 0000..9999 (± one day
 *     of offset).
 *  5. pe_json_parse_arena (what POST /v1/events parses with) gives the same verdict and reason
 *     as pe_json_parse, and on success an equal tree.
 *
 * The input is copied into an exactly-sized heap buffer so a read past its end is an ASan
 * error. Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/events.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_events: invariant failed at line %d: %s\n", __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MIN_US ((INT64_C(-62167219200) - 86400) * 1000000) /* 0000-01-01 minus a day */
#define MAX_US ((INT64_C(253402300800) + 86400) * 1000000) /* 10000-01-01 plus a day */

static const char *const CODES[] = {"missing_field",  "invalid_type",  "out_of_range",
                                    "too_long",       "unknown_event", "unknown_field",
                                    "invalid_format", "too_large"};

static bool known_code(const char *code)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(CODES); i++)
        if (strcmp(code, CODES[i]) == 0)
            return true;
    return false;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static bool uuid_shaped(const char *s)
{
    for (size_t i = 0; i < PE_EVENT_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    return s[PE_EVENT_UUID_LEN] == '\0';
}

static void check_id(const char *s)
{
    CHECK(s != NULL);
    size_t n = strlen(s);
    CHECK(n >= 1 && n <= PE_EVENT_ID_MAX);
}

static void check_accepted(const cJSON *obj, const pe_event_t *ev, int64_t batch_sent_at_us)
{
    CHECK(ev->def != NULL);
    CHECK(ev->event_id != NULL && uuid_shaped(ev->event_id));
    char canon[PE_EVENT_UUID_LEN + 1];
    pe_events_id_canonical(ev->event_id, canon);
    CHECK(strlen(canon) == PE_EVENT_UUID_LEN);
    CHECK(ev->name != NULL && pe_events_lookup(ev->name) == ev->def);
    check_id(ev->session_id);
    check_id(ev->anonymous_id);
    if (ev->user_id)
        check_id(ev->user_id);
    if (ev->store_id)
        check_id(ev->store_id);
    CHECK(ev->properties != NULL && cJSON_IsObject(ev->properties));
    CHECK(ev->context == NULL || cJSON_IsObject(ev->context));
    CHECK(ev->custom == NULL || cJSON_IsObject(ev->custom));
    if (ev->device_type)
        CHECK(strcmp(ev->device_type, "desktop") == 0 || strcmp(ev->device_type, "mobile") == 0 ||
              strcmp(ev->device_type, "tablet") == 0 || strcmp(ev->device_type, "other") == 0);

    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(obj, "timestamp");
    int64_t us = 0;
    CHECK(cJSON_IsString(ts) && pe_time_parse_rfc3339(ts->valuestring, &us) == 0);
    CHECK(us == ev->timestamp_us);
    if (!cJSON_GetObjectItemCaseSensitive(obj, "sentAt"))
        CHECK(ev->sent_at_us == batch_sent_at_us);

    char *printed = cJSON_PrintUnformatted(obj);
    if (printed) { /* NULL only when out of memory */
        CHECK(strlen(printed) <= PE_EVENT_MAX_BYTES);
        free(printed);
    }
}

static void validate_one(const cJSON *obj, int64_t batch_sent_at_us)
{
    pe_event_t ev, again;
    pe_refusal_t err, err2;
    memset(&err, 'Z', sizeof err);
    int rc = pe_events_validate(obj, batch_sent_at_us, &ev, &err);
    CHECK(rc == 0 || rc == PE_EINVAL);
    int rc2 = pe_events_validate(obj, batch_sent_at_us, &again, &err2);
    CHECK(rc2 == rc);
    if (rc == 0) {
        CHECK(memcmp(&ev, &again, sizeof ev) == 0);
        check_accepted(obj, &ev, batch_sent_at_us);
        return;
    }
    CHECK(memchr(err.code, '\0', sizeof err.code) != NULL);
    CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
    CHECK(known_code(err.code));
    size_t n = strlen(err.message);
    CHECK(n > 0 && pe_utf8_valid(err.message, n));
    const char *colon = strstr(err.message, ": ");
    CHECK(colon != NULL && colon != err.message);
    CHECK(all_zero(&ev, sizeof ev));
    CHECK(strcmp(err.code, err2.code) == 0 && strcmp(err.message, err2.message) == 0);
}

static void fuzz_rfc3339(const uint8_t *data, size_t size)
{
    if (size > 48)
        return;
    char s[49];
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t us = 0;
    int rc = pe_time_parse_rfc3339(s, &us);
    CHECK(rc == 0 || rc == PE_EINVAL);
    if (rc == 0) {
        CHECK(us >= MIN_US && us <= MAX_US);
        CHECK(strlen(s) >= 20 && s[10] == 'T');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rfc3339(data, size);

    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    cJSON *root = NULL;
    char err[128];
    int rc = pe_json_parse(text, size, &root, err, sizeof err);
    CHECK(rc == 0 || rc == PE_EINVAL);
    CHECK((rc == 0) == (root != NULL));
    if (rc == 0) {
        const cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "events");
        if (cJSON_IsArray(events)) {
            int64_t sent_at = 0;
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "sentAt");
            if (cJSON_IsString(s) && pe_time_parse_rfc3339(s->valuestring, &sent_at) != 0)
                sent_at = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, events)
            {
                validate_one(e, sent_at);
            }
        } else {
            validate_one(root, 0);
        }
    }
    /* The ingest endpoint's own parse (an arena): the same verdict and reason, an equal tree. */
    pe_json_arena_t *arena = NULL;
    cJSON *arena_root = NULL;
    char arena_err[128];
    int arena_rc =
        pe_json_parse_arena(text, size, &arena, &arena_root, arena_err, sizeof arena_err);
    CHECK(arena_rc == rc);
    CHECK((arena_rc == 0) == (arena != NULL && arena_root != NULL));
    if (rc != 0) {
        CHECK(strcmp(err, arena_err) == 0);
    } else { /* printed, not cJSON_Compare: duplicate keys, and exponential on nesting */
        char *a = pe_json_print(root), *b = pe_json_print(arena_root);
        CHECK(a && b && strcmp(a, b) == 0);
        cJSON_free(a);
        cJSON_free(b);
    }
    pe_json_arena_free(arena);
    cJSON_Delete(root);
    free(text);
    return 0;
}
