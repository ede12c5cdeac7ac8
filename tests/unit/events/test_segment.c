/*
 * test_segment.c — the Segment mapping (pe_events_segment_map) on its own: no server, no
 * database, no clock.
 *
 * Invariants checked:
 *  1. Every case of tests/corpus/segment/cases.txt maps <case>.in.json, through the route and with
 *     the store currency its line names, to exactly what <case>.out.json holds, compared as
 *     parsed JSON (key order and number spelling aside): the events, the batch sentAt, whether
 *     the store's currency was wanted and which events the validator then refuses, with which
 *     code — or the refusal's status, code and message.
 *  2. The corpus is whole: every .in.json has a line and every line both files; it maps to every
 *     native event the mapper knows and refuses with every code it uses.
 *  3. Pure: the same inputs give the same events; the seed decides exactly the eventIds of
 *     messages without a messageId (distinct per index), the store id exactly those named by a
 *     messageId that is not a UUID.
 *  4. Mapping again with the store's currency (what the handler does when wants_store_currency)
 *     changes only the currency of the events that had none.
 *  5. A refusal hands nothing out; pe_events_segment_check_body refuses in the mapper's words.
 *
 * The fixed inputs of the corpus (store id, receive time, seed) are below and in
 * tests/corpus/segment/README.md. The corpus is found beside this file (derived from __FILE__).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/events.h"
#include "pe_test.h"

#define STORE_ID    "8f14e45f-ceea-467f-a0e6-c2d5b3f1a001"
#define RECEIVED_AT "2026-11-24T12:00:00Z"

/* ---- helpers --------------------------------------------------------------------------------- */

/* "<repo>/tests/corpus/segment" from this file's path. */
static void corpus_dir(char *out, size_t outlen)
{
    const char *file = __FILE__;
    const char *at = strstr(file, "unit/events/test_segment.c");
    assert_non_null(at);
    snprintf(out, outlen, "%.*scorpus/segment", (int)(at - file), file);
}

static cJSON *parse_text(const char *text, const char *what)
{
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(text, strlen(text), &j, err, sizeof err) != 0)
        fail_msg("%s does not parse: %s", what, err);
    return j;
}

static cJSON *read_json(const char *name, const char *suffix)
{
    char rel[256];
    snprintf(rel, sizeof rel, "segment/%s%s", name, suffix);
    char *text = pe_test_corpus(rel);
    cJSON *j = parse_text(text, rel);
    free(text);
    return j;
}

/* The corpus's fixed inputs: STORE_ID, RECEIVED_AT, seed bytes 0, 1, …, 31. */
static pe_events_segment_in_t corpus_in(const char *currency)
{
    pe_events_segment_in_t in = {.store_id = STORE_ID, .store_currency = currency};
    assert_int_equal(pe_time_parse_rfc3339(RECEIVED_AT, &in.received_at_us), 0);
    for (size_t i = 0; i < sizeof in.seed; i++)
        in.seed[i] = (unsigned char)i;
    return in;
}

/* route "batch" → NULL, else the message type of /v1/<route>. */
static const char *type_of_route(const char *route)
{
    return strcmp(route, "batch") == 0 ? NULL : route;
}

/* What a case gives, in the shape of its .out.json. */
static cJSON *outcome(const cJSON *body, const char *type, const char *currency)
{
    pe_events_segment_in_t in = corpus_in(currency);
    pe_events_segment_out_t out;
    pe_refusal_t err;
    int rc = pe_events_segment_map(body, type, &in, &out, &err);
    cJSON *o = cJSON_CreateObject();
    assert_non_null(o);
    if (rc != 0) {
        assert_true(rc == PE_EINVAL || rc == PE_ETOOBIG);
        assert_null(out.events);
        cJSON *r = cJSON_AddObjectToObject(o, "refused");
        cJSON_AddNumberToObject(r, "status", pe_error_http_status(rc));
        cJSON_AddStringToObject(r, "code", err.code);
        cJSON_AddStringToObject(r, "message", err.message);
        return o;
    }
    assert_true(cJSON_IsArray(out.events));
    if (out.batch_sent_at_us) {
        char sent[40];
        pe_time_format_rfc3339(out.batch_sent_at_us, sent, sizeof sent);
        cJSON_AddStringToObject(o, "batchSentAt", sent);
    } else {
        cJSON_AddNullToObject(o, "batchSentAt");
    }
    cJSON_AddBoolToObject(o, "wantsStoreCurrency", out.wants_store_currency);
    cJSON *rejected = cJSON_AddArrayToObject(o, "rejected");
    int index = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, out.events)
    {
        pe_event_t valid;
        pe_refusal_t why;
        if (pe_events_validate(ev, out.batch_sent_at_us, &valid, &why) != 0) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "index", index);
            cJSON_AddStringToObject(r, "code", why.code);
            cJSON_AddItemToArray(rejected, r);
        }
        index++;
    }
    cJSON_AddItemToObject(o, "events", out.events); /* o owns it now */
    return o;
}

/* One line of cases.txt: "<case> <route> <currency or ->: <comment>". False for comments. */
static bool parse_line(char *line, char **name, char **route, char **currency)
{
    if (!line[0] || line[0] == '#')
        return false;
    char *colon = strchr(line, ':');
    assert_non_null(colon);
    *colon = '\0';
    char *save = NULL;
    *name = strtok_r(line, " ", &save);
    *route = strtok_r(NULL, " ", &save);
    *currency = strtok_r(NULL, " ", &save);
    if (!*name || !*route || !*currency || strtok_r(NULL, " ", &save))
        fail_msg("cases.txt: want \"<case> <route> <currency>: …\", got \"%s\"", line);
    if (strcmp(*currency, "-") == 0)
        *currency = NULL;
    return true;
}

/* ---- the corpus ------------------------------------------------------------------------------ */

/* The native events the mapper knows, and the refusal codes: each must show up in the corpus. */
static const char *const NAMES[] = {"storefront.page.viewed",
                                    "storefront.product.viewed",
                                    "storefront.cart.item_added",
                                    "storefront.cart.viewed",
                                    "checkout.session.started",
                                    "checkout.shipping.submitted",
                                    "checkout.payment.submitted",
                                    "checkout.order.completed",
                                    "custom.segment.checkout_step_completed",
                                    "custom.segment.identify",
                                    "custom.segment.screen",
                                    "custom.segment.group",
                                    "custom.segment.alias"};
static const char *const REFUSALS[] = {"invalid_request", "payload_too_large"};

static void mark(const char *const *list, size_t n, bool *seen, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(list[i], s) == 0)
            seen[i] = true;
}

static void test_corpus(void **state)
{
    (void)state;
    char *cases = pe_test_corpus("segment/cases.txt");
    bool seen_name[PE_ARRAY_LEN(NAMES)] = {0}, seen_refusal[PE_ARRAY_LEN(REFUSALS)] = {0};
    int ncases = 0, failed = 0;
    char *save = NULL;
    for (char *line = strtok_r(cases, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *name, *route, *currency;
        if (!parse_line(line, &name, &route, &currency))
            continue;
        ncases++;
        cJSON *in = read_json(name, ".in.json");
        cJSON *want = read_json(name, ".out.json");
        cJSON *got = outcome(in, type_of_route(route), currency);
        if (!cJSON_Compare(got, want, true)) {
            char *text = cJSON_Print(got);
            fprintf(stderr, "%s: mapped to something else than %s.out.json; got\n%s\n", name, name,
                    text);
            free(text);
            failed++;
        }
        const cJSON *ev;
        cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(got, "events"))
        {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(ev, "name");
            mark(NAMES, PE_ARRAY_LEN(NAMES), seen_name, cJSON_GetStringValue(n));
        }
        const cJSON *refused = cJSON_GetObjectItemCaseSensitive(got, "refused");
        mark(REFUSALS, PE_ARRAY_LEN(REFUSALS), seen_refusal,
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(refused, "code")));
        cJSON_Delete(got);
        cJSON_Delete(want);
        cJSON_Delete(in);
    }
    free(cases);
    if (failed)
        fail_msg("%d of %d corpus cases differ (see above)", failed, ncases);
    assert_true(ncases >= 40);
    for (size_t i = 0; i < PE_ARRAY_LEN(NAMES); i++)
        if (!seen_name[i])
            fail_msg("no corpus case maps to %s", NAMES[i]);
    for (size_t i = 0; i < PE_ARRAY_LEN(REFUSALS); i++)
        if (!seen_refusal[i])
            fail_msg("no corpus case is refused with %s", REFUSALS[i]);
}

/* True when name has a line in cases.txt. */
static bool listed(const char *cases, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = cases; (p = strstr(p, name)) != NULL; p += n)
        if ((p == cases || p[-1] == '\n') && p[n] == ' ')
            return true;
    return false;
}

static void test_corpus_whole(void **state)
{
    (void)state;
    char dir[4096];
    corpus_dir(dir, sizeof dir);
    char *cases = pe_test_corpus("segment/cases.txt");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int nin = 0, nout = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char name[256];
        const char *suffix = strchr(e->d_name, '.');
        bool is_in = suffix && strcmp(suffix, ".in.json") == 0;
        if (!is_in && !(suffix && strcmp(suffix, ".out.json") == 0))
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(suffix - e->d_name), e->d_name);
        if (!listed(cases, name))
            fail_msg("%s has no line in cases.txt", e->d_name);
        if (is_in)
            nin++;
        else
            nout++;
    }
    closedir(d);
    /* Every line has both files: read_json fails the test otherwise (test_corpus); here the
     * counts match, so no file is left over either. */
    assert_int_equal(nin, nout);
    free(cases);
}

/* ---- purity ---------------------------------------------------------------------------------- */

static cJSON *map_ok(const cJSON *body, const char *type, const pe_events_segment_in_t *in,
                     bool *wants)
{
    pe_events_segment_out_t out;
    pe_refusal_t err;
    if (pe_events_segment_map(body, type, in, &out, &err) != 0)
        fail_msg("refused: %s %s", err.code, err.message);
    if (wants)
        *wants = out.wants_store_currency;
    return out.events;
}

static const char *event_id(const cJSON *events, int i)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, i), "eventId"));
}

/* event_ids.in.json: 0 a UUID messageId, 1 a number, 2 none, 3 "", 4 another text. */
static void test_event_ids_pure(void **state)
{
    (void)state;
    cJSON *body = read_json("event_ids", ".in.json");
    pe_events_segment_in_t in = corpus_in("USD");
    cJSON *a = map_ok(body, NULL, &in, NULL);
    cJSON *b = map_ok(body, NULL, &in, NULL);
    assert_true(cJSON_Compare(a, b, true));
    assert_string_not_equal(event_id(a, 2), event_id(a, 3));
    assert_int_equal(event_id(a, 2)[14], '4'); /* version 4 layout */
    assert_int_equal(event_id(a, 4)[14], '5'); /* name-based */

    pe_events_segment_in_t reseeded = in;
    reseeded.seed[31] ^= 1;
    cJSON *c = map_ok(body, NULL, &reseeded, NULL);
    for (int i = 0; i < 5; i++) {
        bool from_seed = i == 2 || i == 3;
        assert_int_equal(strcmp(event_id(a, i), event_id(c, i)) != 0, from_seed);
    }

    pe_events_segment_in_t other_store = in;
    other_store.store_id = "another-store";
    cJSON *d = map_ok(body, NULL, &other_store, NULL);
    for (int i = 0; i < 5; i++) {
        bool named = i == 1 || i == 4;
        assert_int_equal(strcmp(event_id(a, i), event_id(d, i)) != 0, named);
    }

    /* everything but the eventIds is the same whatever the seed and the store */
    for (int i = 0; i < 5; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(a, i), "eventId");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(c, i), "eventId");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(d, i), "eventId");
    }
    assert_true(cJSON_Compare(a, c, true));
    assert_true(cJSON_Compare(a, d, true));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
    cJSON_Delete(body);
}

/* What the handler does when the mapping wants the store's currency. */
static void test_store_currency_second_pass(void **state)
{
    (void)state;
    const char *const cases[] = {"track_order_completed_no_store_currency",
                                 "track_product_added_no_store_currency"};
    for (size_t k = 0; k < PE_ARRAY_LEN(cases); k++) {
        cJSON *body = read_json(cases[k], ".in.json");
        pe_events_segment_in_t in = corpus_in(NULL);
        bool wants = false;
        cJSON *first = map_ok(body, NULL, &in, &wants);
        assert_true(wants);
        in.store_currency = "CHF";
        cJSON *second = map_ok(body, NULL, &in, &wants);
        assert_false(wants);
        cJSON *props =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(second, 0), "properties");
        assert_string_equal(
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(props, "currency")), "CHF");
        cJSON_DeleteItemFromObjectCaseSensitive(props, "currency");
        assert_true(cJSON_Compare(first, second, true));
        cJSON_Delete(first);
        cJSON_Delete(second);
        cJSON_Delete(body);
    }

    /* given currencies and currency-less events never want the store's */
    cJSON *body = read_json("track_checkout_started", ".in.json");
    pe_events_segment_in_t in = corpus_in(NULL);
    bool wants = true;
    cJSON_Delete(map_ok(body, NULL, &in, &wants));
    assert_false(wants);
    cJSON_Delete(body);
    body = read_json("page", ".in.json");
    cJSON_Delete(map_ok(body, NULL, &in, &wants));
    assert_false(wants);
    cJSON_Delete(body);
}

static void test_check_body(void **state)
{
    (void)state;
    pe_refusal_t err;
    cJSON *array = cJSON_CreateArray();
    cJSON *object = cJSON_CreateObject();
    assert_int_equal(pe_events_segment_check_body(object, NULL, &err), 0);
    assert_int_equal(pe_events_segment_check_body(array, "page", &err), PE_EINVAL);
    assert_string_equal(err.code, "invalid_request");
    assert_string_equal(err.message, "the body must be a JSON object (one Segment message)");
    assert_int_equal(pe_events_segment_check_body(NULL, NULL, &err), PE_EINVAL);
    assert_string_equal(err.message, "the body must be a JSON object {\"batch\":[…]}");

    /* the mapper refuses the same way, and hands nothing out */
    pe_events_segment_in_t in = corpus_in("USD");
    pe_events_segment_out_t out = {.events = (cJSON *)1, .wants_store_currency = true};
    pe_refusal_t again;
    assert_int_equal(pe_events_segment_map(array, "page", &in, &out, &again), PE_EINVAL);
    assert_string_equal(again.message, "the body must be a JSON object (one Segment message)");
    assert_null(out.events);
    assert_false(out.wants_store_currency);
    cJSON_Delete(array);
    cJSON_Delete(object);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),         cmocka_unit_test(test_corpus_whole),
        cmocka_unit_test(test_event_ids_pure), cmocka_unit_test(test_store_currency_second_pass),
        cmocka_unit_test(test_check_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
