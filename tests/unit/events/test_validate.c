/*
 * test_validate.c — the event validator (pe_events_validate), the definition lookups and the
 * RFC 3339 parser, without a database.
 *
 * Invariants checked:
 *  1. Every file of tests/corpus/events/valid/ is accepted, every defined event type (and the
 *     custom one) has at least one there, and every file of invalid/ is refused with the code
 *     tests/corpus/events/expected-codes.txt names and a message "<path>: …" in valid UTF-8.
 *  2. Messages name the failing path exactly ("properties.items[3].quantity: …").
 *  3. An accepted event's strings borrow from the tree; absent properties read as an empty
 *     object; a refusal leaves *ev zeroed.
 *  4. The sizes the validator bounds are cJSON_PrintUnformatted's: an event of exactly
 *     PE_EVENT_MAX_BYTES passes, one byte more is too_large (likewise `custom`).
 *  5. pe_time_parse_rfc3339 agrees with timegm on every day from 1900 to 2100 and refuses
 *     impossible dates, hours 24, leap seconds, lower-case t/z and malformed offsets.
 *
 * The corpus is found beside this file (derived from __FILE__), so the test runs from any
 * directory.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pe/events.h"
#include "pe_test.h"

#define MAX_FILE (1u << 20)

/* ---- helpers ---------------------------------------------------------------------------------
 */

/* "<repo>/tests/corpus/events/<sub>" from this file's path. */
static void corpus_path(char *out, size_t outlen, const char *sub)
{
    const char *file = __FILE__;
    const char *at = strstr(file, "unit/events/test_validate.c");
    assert_non_null(at);
    snprintf(out, outlen, "%.*scorpus/events/%s", (int)(at - file), file, sub);
}

/* Reads a whole file; the caller frees. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
        return NULL;
    }
    char *buf = malloc(MAX_FILE);
    assert_non_null(buf);
    *len = fread(buf, 1, MAX_FILE, f);
    assert_true(*len < MAX_FILE);
    fclose(f);
    return buf;
}

static cJSON *parse_text(const char *text)
{
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(text, strlen(text), &j, err, sizeof err) != 0)
        fail_msg("test JSON does not parse: %s: %s", err, text);
    return j;
}

/* The code and message of validating text (which must be refused). */
static void expect_refusal(const char *text, const char *code, const char *message)
{
    cJSON *j = parse_text(text);
    pe_event_t ev;
    pe_refusal_t err;
    int rc = pe_events_validate(j, 0, &ev, &err);
    if (rc != PE_EINVAL)
        fail_msg("accepted: %s", text);
    if (strcmp(err.code, code) != 0 || (message && strcmp(err.message, message) != 0))
        fail_msg("got %s \"%s\", want %s \"%s\"", err.code, err.message, code,
                 message ? message : "…");
    assert_true(pe_utf8_valid(err.message, strlen(err.message)));
    assert_null(ev.name);
    assert_null(ev.properties);
    cJSON_Delete(j);
}

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

static bool json_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

#define EV_HEAD                                                                                    \
    "{\"eventId\":\"0b9e8f52-1d3a-4c5e-9f7a-2b6c8d4e1f30\",\"timestamp\":\"2026-11-24T10:00:"      \
    "00Z\","                                                                                       \
    "\"sessionId\":\"s\",\"anonymousId\":\"a\","

/* ---- the corpus ------------------------------------------------------------------------------
 */

static void test_corpus_valid(void **state)
{
    (void)state;
    char dir[4096], path[4400];
    corpus_path(dir, sizeof dir, "valid");
    DIR *d = opendir(dir);
    if (!d) {
        fail_msg("cannot open %s", dir);
        return;
    }
    bool seen[64] = {false};
    bool custom_seen = false;
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!json_file(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = read_file(path, &len);
        assert_non_null(text);
        cJSON *j = NULL;
        char perr[128];
        if (pe_json_parse(text, len, &j, perr, sizeof perr) != 0)
            fail_msg("%s: not JSON: %s", e->d_name, perr);
        pe_event_t ev;
        pe_refusal_t err;
        if (pe_events_validate(j, 0, &ev, &err) != 0)
            fail_msg("%s: refused: %s %s", e->d_name, err.code, err.message);
        assert_non_null(ev.def);
        assert_non_null(ev.event_id);
        assert_non_null(ev.name);
        assert_non_null(ev.session_id);
        assert_non_null(ev.anonymous_id);
        assert_non_null(ev.properties);
        assert_true(cJSON_IsObject(ev.properties));
        assert_ptr_equal(pe_events_lookup(ev.name), ev.def);
        for (size_t i = 0; i < pe_events_count(); i++)
            if (pe_events_at(i) == ev.def)
                seen[i] = true;
        if (strncmp(ev.name, "custom.", 7) == 0)
            custom_seen = true;
        cJSON_Delete(j);
        free(text);
        files++;
    }
    closedir(d);
    assert_true(files >= pe_events_count() + 1);
    for (size_t i = 0; i < pe_events_count(); i++)
        if (!seen[i])
            fail_msg("no valid corpus file for %s", pe_events_at(i)->name);
    assert_true(custom_seen);
}

typedef struct {
    char file[128];
    char code[32];
    bool used;
} expectation_t;

static void test_corpus_invalid(void **state)
{
    (void)state;
    static expectation_t want[512];
    size_t nwant = 0;
    char path[4400], dir[4096], line[256];
    corpus_path(path, sizeof path, "expected-codes.txt");
    FILE *f = fopen(path, "r");
    if (!f) {
        fail_msg("cannot open %s", path);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        assert_true(nwant < PE_ARRAY_LEN(want));
        expectation_t *w = &want[nwant++];
        if (sscanf(line, "%127s %31s", w->file, w->code) != 2)
            fail_msg("bad line in expected-codes.txt: %s", line);
        if (!known_code(w->code))
            fail_msg("%s: %s is not a code of pe/events.h", w->file, w->code);
    }
    fclose(f);

    corpus_path(dir, sizeof dir, "invalid");
    DIR *d = opendir(dir);
    if (!d) {
        fail_msg("cannot open %s", dir);
        return;
    }
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!json_file(e->d_name))
            continue;
        expectation_t *w = NULL;
        for (size_t i = 0; i < nwant && !w; i++)
            if (strcmp(want[i].file, e->d_name) == 0)
                w = &want[i];
        if (!w) {
            fail_msg("%s has no line in expected-codes.txt", e->d_name);
            break;
        }
        w->used = true;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = read_file(path, &len);
        assert_non_null(text);
        cJSON *j = NULL;
        char perr[128];
        if (pe_json_parse(text, len, &j, perr, sizeof perr) != 0)
            fail_msg("%s: not JSON: %s", e->d_name, perr);
        assert_true(cJSON_IsObject(j)); /* one event object per file */
        pe_event_t ev;
        pe_refusal_t err;
        if (pe_events_validate(j, 0, &ev, &err) != PE_EINVAL)
            fail_msg("%s: accepted", e->d_name);
        if (strcmp(err.code, w->code) != 0)
            fail_msg("%s: code %s (%s), want %s", e->d_name, err.code, err.message, w->code);
        const char *colon = strstr(err.message, ": ");
        if (!colon || colon == err.message)
            fail_msg("%s: message does not start with a path: %s", e->d_name, err.message);
        assert_true(pe_utf8_valid(err.message, strlen(err.message)));
        assert_null(ev.event_id);
        cJSON_Delete(j);
        free(text);
        files++;
    }
    closedir(d);
    assert_true(files >= 30);
    for (size_t i = 0; i < nwant; i++)
        if (!want[i].used)
            fail_msg("expected-codes.txt names %s, which is not in invalid/", want[i].file);
}

/* ---- codes and paths -------------------------------------------------------------------------
 */

static void test_codes_and_paths(void **state)
{
    (void)state;
    expect_refusal("[]", "invalid_type", "event: must be an object");
    expect_refusal("\"x\"", "invalid_type", "event: must be an object");
    expect_refusal(EV_HEAD "\"name\":\"checkout.order.completed\",\"properties\":{\"orderId\":"
                           "\"o\",\"value\":1,\"currency\":\"EUR\",\"items\":["
                           "{\"productId\":\"a\",\"quantity\":1,\"price\":1},"
                           "{\"productId\":\"b\",\"quantity\":1,\"price\":1},"
                           "{\"productId\":\"c\",\"quantity\":1,\"price\":1},"
                           "{\"productId\":\"d\",\"quantity\":0.5,\"price\":1}]}}",
                   "invalid_type", "properties.items[3].quantity: must be an integer 1..10000");
    expect_refusal(EV_HEAD "\"name\":\"storefront.cart.item_added\",\"properties\":{"
                           "\"productId\":\"p\",\"quantity\":20000,\"price\":1,\"currency\":"
                           "\"EUR\"}}",
                   "out_of_range", "properties.quantity: must be an integer 1..10000");
    expect_refusal(EV_HEAD "\"name\":\"storefront.product.viewed\",\"properties\":{}}",
                   "missing_field", "properties.productId: required");
    /* Keys given twice: JSON parsers disagree on which copy wins. */
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"sessionId\":\"t\"}",
                   "invalid_format", "sessionId: given twice");
    expect_refusal(EV_HEAD "\"name\":\"storefront.product.viewed\",\"properties\":{"
                           "\"productId\":\"p\",\"productId\":\"q\"}}",
                   "invalid_format", "properties.productId: given twice");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"context\":{\"page\":{\"url\":"
                           "\"a\",\"url\":\"b\"}}}",
                   "invalid_format", "context.page.url: given twice");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"custom\":{\"a\":1,\"a\":2}}",
                   "invalid_format", "custom: key 'a' given twice");
    /* Foreign keys are quoted cut and cleaned, so the message stays one line of UTF-8. */
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"a\\nb\":1}", "unknown_field",
                   "a?b: unknown field");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"\":1}", "unknown_field",
                   "\"\": unknown field");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"context\":{\"\":1}}",
                   "unknown_field", "context.\"\": unknown field");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"" /* 47 bytes, then é */
                           "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\xc3\xa9tail\":1}",
                   "unknown_field",
                   "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...: unknown field");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"context\":{\"device\":{"
                           "\"type\":\"mobile\",\"os\":\"x\"}}}",
                   "unknown_field", "context.device.os: unknown field");
    /* a number that is not finite: the one rule of pe/core.h, the path down to the number */
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"custom\":{\"n\":1e999}}",
                   "out_of_range", "custom.n: " PE_JSON_NONFINITE_RULE);
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"custom\":{\"a\":[1,{\"b\":2,"
                           "\"c\":-1e400}],\"d\":1e400}}",
                   "out_of_range", "custom.a[1].c: " PE_JSON_NONFINITE_RULE);
    expect_refusal(EV_HEAD "\"name\":\"custom.quiz.answered\",\"properties\":{\"deep\":{"
                           "\"n\":1e400}}}",
                   "out_of_range", "properties.deep.n: " PE_JSON_NONFINITE_RULE);
    expect_refusal(EV_HEAD "\"name\":\"storefront.cart.item_added\",\"properties\":{"
                           "\"productId\":\"p\",\"quantity\":1,\"price\":-1e400,\"currency\":"
                           "\"EUR\"}}",
                   "out_of_range", "properties.price: " PE_JSON_NONFINITE_RULE);
    expect_refusal(EV_HEAD "\"name\":\"storefront.cart.item_added\",\"properties\":{"
                           "\"productId\":\"p\",\"quantity\":1e400,\"price\":1,\"currency\":"
                           "\"EUR\"}}",
                   "out_of_range", "properties.quantity: " PE_JSON_NONFINITE_RULE);
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"userId\":\"\"}", "invalid_format",
                   "userId: must not be empty");
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"storeId\":\"a\\u007fb\"}",
                   "invalid_format", "storeId: must not contain control characters");
    expect_refusal(EV_HEAD "\"name\":\"\"}", "unknown_event", NULL);
    expect_refusal(EV_HEAD "\"name\":\"custom..x\"}", "unknown_event", NULL);
    expect_refusal(EV_HEAD "\"name\":\"custom.a.b.c\"}", "unknown_event", NULL);
    expect_refusal(EV_HEAD "\"name\":\"storefront.cart.viewed\",\"properties\":{\"itemCount\":"
                           "null}}",
                   "invalid_type", "properties.itemCount: must be an integer 0..10000");
    /* Message buffers never overflow, whatever the path. */
    expect_refusal(EV_HEAD "\"name\":\"storefront.page.viewed\",\"sentAt\":\"2026-11-24T10:00:"
                           "00+05:00 \"}",
                   "invalid_format", NULL);
}

/* ---- borrowed fields -------------------------------------------------------------------------
 */

static void test_borrowed_fields(void **state)
{
    (void)state;
    cJSON *j = parse_text(
        "{\"eventId\":\"0B9E8F52-1D3A-4C5E-9F7A-2B6C8D4E1F30\",\"name\":\"storefront.cart.viewed\","
        "\"timestamp\":\"2026-11-24T10:00:00.123Z\",\"sentAt\":\"2026-11-24T10:00:05Z\","
        "\"sessionId\":\"s1\",\"anonymousId\":\"a1\",\"userId\":\"u1\",\"storeId\":\"st\","
        "\"context\":{\"page\":{\"path\":\"/cart\",\"url\":\"https://x/cart\"},\"utm\":{"
        "\"source\":\"news\",\"medium\":\"email\",\"campaign\":\"bf\",\"term\":\"t\"},"
        "\"device\":{\"type\":\"tablet\"},\"locale\":\"de-DE\"},\"custom\":{\"k\":[1,2]}}");
    pe_event_t ev;
    pe_refusal_t err;
    assert_int_equal(pe_events_validate(j, 42, &ev, &err), 0);
    assert_ptr_equal(ev.event_id, cJSON_GetObjectItem(j, "eventId")->valuestring);
    char canon[PE_EVENT_UUID_LEN + 1];
    pe_events_id_canonical(ev.event_id, canon);
    assert_string_equal(canon, "0b9e8f52-1d3a-4c5e-9f7a-2b6c8d4e1f30");
    assert_string_equal(ev.name, "storefront.cart.viewed");
    assert_ptr_equal(ev.def, pe_events_lookup("storefront.cart.viewed"));
    assert_int_equal(ev.def->funnel_step, PE_FUNNEL_CART);
    assert_int_equal(ev.timestamp_us, 1795514400123000);
    assert_int_equal(ev.sent_at_us, 1795514405000000); /* the event's own beats the batch's */
    assert_string_equal(ev.session_id, "s1");
    assert_string_equal(ev.anonymous_id, "a1");
    assert_string_equal(ev.user_id, "u1");
    assert_string_equal(ev.store_id, "st");
    assert_ptr_equal(ev.context, cJSON_GetObjectItem(j, "context"));
    assert_ptr_equal(ev.custom, cJSON_GetObjectItem(j, "custom"));
    assert_string_equal(ev.page_path, "/cart");
    assert_string_equal(ev.utm_source, "news");
    assert_string_equal(ev.utm_medium, "email");
    assert_string_equal(ev.utm_campaign, "bf");
    assert_string_equal(ev.device_type, "tablet");
    /* Absent properties read as an empty object that is not part of the tree. */
    assert_true(cJSON_IsObject(ev.properties));
    assert_null(ev.properties->child);
    cJSON_Delete(j);

    j = parse_text(EV_HEAD "\"name\":\"custom.quiz.completed\",\"properties\":{\"score\":3}}");
    assert_int_equal(pe_events_validate(j, 42, &ev, &err), 0);
    assert_int_equal(ev.sent_at_us, 42); /* the batch's sentAt when the event has none */
    assert_ptr_equal(ev.def, pe_events_lookup("custom.other.thing"));
    assert_ptr_equal(ev.properties, cJSON_GetObjectItem(j, "properties"));
    assert_null(ev.user_id);
    assert_null(ev.store_id);
    assert_null(ev.context);
    assert_null(ev.custom);
    assert_null(ev.page_path);
    assert_null(ev.device_type);
    cJSON_Delete(j);
}

/* ---- definitions -----------------------------------------------------------------------------
 */

static void test_definitions(void **state)
{
    (void)state;
    assert_int_equal(pe_events_count(), 9);
    assert_null(pe_events_at(pe_events_count()));
    static const struct {
        const char *name;
        pe_funnel_step_t step;
    } funnel[] = {
        {"storefront.page.viewed", PE_FUNNEL_NONE},
        {"storefront.product.viewed", PE_FUNNEL_NONE},
        {"storefront.cart.item_added", PE_FUNNEL_CART},
        {"storefront.cart.viewed", PE_FUNNEL_CART},
        {"checkout.session.started", PE_FUNNEL_CHECKOUT},
        {"checkout.shipping.submitted", PE_FUNNEL_SHIPPING},
        {"checkout.payment.submitted", PE_FUNNEL_PAYMENT},
        {"checkout.order.completed", PE_FUNNEL_CONFIRMATION},
        {"experiment.exposure.assigned", PE_FUNNEL_NONE},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(funnel); i++) {
        const pe_event_def_t *def = pe_events_lookup(funnel[i].name);
        assert_non_null(def);
        assert_ptr_equal(def, pe_events_at(i)); /* the stable order */
        assert_int_equal(def->funnel_step, funnel[i].step);
        for (size_t k = 0; k < def->nprops; k++) {
            const pe_prop_def_t *p = &def->props[k];
            if (p->type == PE_PROP_STRING)
                assert_true(p->max_len > 0);
            if (p->type == PE_PROP_NUMBER || p->type == PE_PROP_INTEGER || p->type == PE_PROP_ITEMS)
                assert_true(p->min <= p->max);
        }
    }
    assert_string_equal(pe_events_funnel_step_name(PE_FUNNEL_CART), "cart");
    assert_string_equal(pe_events_funnel_step_name(PE_FUNNEL_CONFIRMATION), "confirmation");
    assert_null(pe_events_funnel_step_name(PE_FUNNEL_NONE));

    const pe_event_def_t *custom = pe_events_lookup("custom.wishlist.item_saved");
    assert_non_null(custom);
    assert_int_equal(custom->nprops, 0);
    assert_int_equal(custom->funnel_step, PE_FUNNEL_NONE);
    static const char *const not_events[] = {
        "custom",
        "custom.",
        "custom.a",
        "custom.a.",
        "custom..b",
        "custom.a.b.c",
        "custom.A.b",
        "custom.a-b.c",
        "custom.a.b ",
        "Custom.a.b",
        "storefront",
        "page_viewed",
        "",
        "storefront.page.viewed.x",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(not_events); i++)
        if (pe_events_lookup(not_events[i]))
            fail_msg("'%s' resolved to an event", not_events[i]);
    assert_null(pe_events_lookup(NULL));
}

/* ---- sizes -----------------------------------------------------------------------------------
 */

static size_t printed_len(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(s);
    size_t n = strlen(s);
    free(s);
    return n;
}

/* Grows `name` of the last line item until the event prints as exactly target bytes. */
static void set_event_size(cJSON *ev, size_t target)
{
    cJSON *items = cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "properties"), "items");
    char name[257];
    for (;;) {
        size_t n = printed_len(ev);
        if (n == target)
            return;
        assert_true(n < target);
        cJSON *last = cJSON_GetArrayItem(items, cJSON_GetArraySize(items) - 1);
        cJSON *nm = cJSON_GetObjectItem(last, "name");
        size_t have = strlen(nm->valuestring);
        size_t add = target - n;
        if (have == 256) { /* this item is full: start another */
            cJSON *item = cJSON_Duplicate(last, true);
            assert_non_null(item);
            cJSON_ReplaceItemInObject(item, "name", cJSON_CreateString("n"));
            cJSON_AddItemToArray(items, item);
            continue;
        }
        size_t len = have + add > 256 ? 256 : have + add;
        memset(name, 'n', len);
        name[len] = '\0';
        cJSON_ReplaceItemInObject(last, "name", cJSON_CreateString(name));
    }
}

static void test_event_size_bound(void **state)
{
    (void)state;
    cJSON *ev = parse_text(EV_HEAD "\"name\":\"checkout.order.completed\",\"properties\":{"
                                   "\"orderId\":\"o\",\"value\":0.1,\"currency\":\"EUR\","
                                   "\"tax\":1.25e-3,\"discount\":123456789.123,\"items\":["
                                   "{\"productId\":\"p\\\"q\\\\\",\"quantity\":1,\"price\":"
                                   "0.3,\"name\":\"n\"}]},\"custom\":{\"t\":\"\\t\\u0001\"}}");
    pe_event_t out;
    pe_refusal_t err;
    set_event_size(ev, PE_EVENT_MAX_BYTES);
    if (pe_events_validate(ev, 0, &out, &err) != 0)
        fail_msg("refused at the bound: %s %s", err.code, err.message);
    cJSON *items = cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "properties"), "items");
    cJSON *last = cJSON_GetArrayItem(items, cJSON_GetArraySize(items) - 1);
    char name[300];
    size_t have = strlen(cJSON_GetObjectItem(last, "name")->valuestring);
    if (have == 256) { /* make room: shorten another item's name by one, lengthen this one */
        cJSON *first = cJSON_GetArrayItem(items, 0);
        size_t f = strlen(cJSON_GetObjectItem(first, "name")->valuestring);
        memset(name, 'n', f - 1);
        name[f - 1] = '\0';
        cJSON_ReplaceItemInObject(first, "name", cJSON_CreateString(name));
        have--;
    }
    memset(name, 'n', have + 1);
    name[have + 1] = '\0';
    cJSON_ReplaceItemInObject(last, "name", cJSON_CreateString(name));
    assert_int_equal(printed_len(ev), PE_EVENT_MAX_BYTES + 1);
    assert_int_equal(pe_events_validate(ev, 0, &out, &err), PE_EINVAL);
    assert_string_equal(err.code, "too_large");
    assert_string_equal(err.message, "event: larger than 32768 bytes serialised");
    cJSON_Delete(ev);
}

static void test_custom_size_bound(void **state)
{
    (void)state;
    cJSON *ev = parse_text(EV_HEAD "\"name\":\"storefront.page.viewed\",\"custom\":{\"a\":0.1,"
                                   "\"b\":-7,\"c\":[true,null,1e300],\"d\":\"\\\"\\n\\u001f\"}}");
    cJSON *custom = cJSON_GetObjectItem(ev, "custom");
    size_t n = printed_len(custom);
    char *pad = malloc(PE_EVENT_CUSTOM_MAX_BYTES);
    assert_non_null(pad);
    /* ,"e":"…" adds 7 bytes plus the padding */
    size_t fill = PE_EVENT_CUSTOM_MAX_BYTES - n - 7;
    memset(pad, 'x', fill);
    pad[fill] = '\0';
    cJSON_AddStringToObject(custom, "e", pad);
    assert_int_equal(printed_len(custom), PE_EVENT_CUSTOM_MAX_BYTES);
    pe_event_t out;
    pe_refusal_t err;
    assert_int_equal(pe_events_validate(ev, 0, &out, &err), 0);
    pad[fill] = 'x';
    pad[fill + 1] = '\0';
    cJSON_ReplaceItemInObject(custom, "e", cJSON_CreateString(pad));
    assert_int_equal(printed_len(custom), PE_EVENT_CUSTOM_MAX_BYTES + 1);
    assert_int_equal(pe_events_validate(ev, 0, &out, &err), PE_EINVAL);
    assert_string_equal(err.code, "too_large");
    assert_string_equal(err.message, "custom: larger than 4096 bytes serialised");
    free(pad);
    cJSON_Delete(ev);
}

/* ---- RFC 3339 --------------------------------------------------------------------------------
 */

static void test_rfc3339_table(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t us;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.5Z", -500000},
        {"2026-11-24T10:00:00.123Z", 1795514400123000},
        {"2026-11-24T10:00:00-00:00", 1795514400000000},
        {"2026-11-24T11:00:00+01:00", 1795514400000000},
        {"2026-11-24T04:30:00-05:30", 1795514400000000},
        {"2024-02-29T23:59:59.123456+05:30", 1709231399123456},
        {"2024-02-29T23:59:59.123456789+05:30", 1709231399123456}, /* truncated to µs */
        {"2024-02-29T23:59:59.1+05:30", 1709231399100000},
        {"2000-02-29T00:00:00Z", 951782400000000},
        {"9999-12-31T23:59:59Z", 253402300799000000},
        {"0001-01-01T00:00:00Z", -62135596800000000},
        {"2026-11-24T10:00:00+23:59", 1795514400000000 - (23 * 3600 + 59 * 60) * INT64_C(1000000)},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(ok); i++) {
        int64_t us = 0;
        if (pe_time_parse_rfc3339(ok[i].s, &us) != 0)
            fail_msg("refused %s", ok[i].s);
        if (us != ok[i].us)
            fail_msg("%s: %lld, want %lld", ok[i].s, (long long)us, (long long)ok[i].us);
    }
    static const char *const bad[] = {
        "",
        "2026-02-30T10:00:00Z",
        "2025-02-29T10:00:00Z",
        "1900-02-29T10:00:00Z", /* divisible by 100, not by 400 */
        "2026-04-31T10:00:00Z",
        "2026-13-01T10:00:00Z",
        "2026-00-10T10:00:00Z",
        "2026-11-00T10:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T10:60:00Z",
        "2026-11-24T23:59:60Z", /* leap seconds are refused */
        "2026-11-24t10:00:00Z",
        "2026-11-24T10:00:00z",
        "2026-11-24 10:00:00Z",
        "2026-11-24T10:00:00",
        "2026-11-24T10:00Z",
        "2026-11-24",
        "2026-11-24T10:00:00.Z",
        "2026-11-24T10:00:00.1234567890Z",
        "2026-11-24T10:00:00+24:00",
        "2026-11-24T10:00:00+05:60",
        "2026-11-24T10:00:00+0530",
        "2026-11-24T10:00:00+05",
        "2026-11-24T10:00:00Z ",
        " 2026-11-24T10:00:00Z",
        "+2026-11-24T10:00:00Z",
        "2026-1-24T10:00:00Z",
        "20261124T100000Z",
        "2026-11-24T10:00:00ZZ",
        "2026-11-24T10:00:00,5Z",
        "２026-11-24T10:00:00Z",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        int64_t us = 7;
        if (pe_time_parse_rfc3339(bad[i], &us) != PE_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    int64_t us;
    assert_int_equal(pe_time_parse_rfc3339(NULL, &us), PE_EINVAL);
}

/* Every day from 1900 to 2100 at a varying time of day, against timegm. */
static void test_rfc3339_against_timegm(void **state)
{
    (void)state;
    static const int DAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    char s[40];
    long n = 0;
    for (int y = 1900; y <= 2100; y++) {
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (int m = 1; m <= 12; m++) {
            int days = DAYS[m - 1] + (m == 2 && leap);
            for (int d = 1; d <= days; d++, n++) {
                int h = (int)(n % 24), mi = (int)(n * 7 % 60), sec = (int)(n * 13 % 60);
                struct tm tm = {.tm_year = y - 1900,
                                .tm_mon = m - 1,
                                .tm_mday = d,
                                .tm_hour = h,
                                .tm_min = mi,
                                .tm_sec = sec};
                int64_t want = (int64_t)timegm(&tm) * 1000000;
                snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, sec);
                int64_t got = 0;
                if (pe_time_parse_rfc3339(s, &got) != 0 || got != want)
                    fail_msg("%s: %lld, want %lld", s, (long long)got, (long long)want);
            }
            /* the day after the month's last is refused */
            snprintf(s, sizeof s, "%04d-%02d-%02dT00:00:00Z", y, m, days + 1);
            int64_t got;
            if (pe_time_parse_rfc3339(s, &got) != PE_EINVAL)
                fail_msg("accepted %s", s);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_valid),
        cmocka_unit_test(test_corpus_invalid),
        cmocka_unit_test(test_codes_and_paths),
        cmocka_unit_test(test_borrowed_fields),
        cmocka_unit_test(test_definitions),
        cmocka_unit_test(test_event_size_bound),
        cmocka_unit_test(test_custom_size_bound),
        cmocka_unit_test(test_rfc3339_table),
        cmocka_unit_test(test_rfc3339_against_timegm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
