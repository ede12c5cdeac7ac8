/*
 * validate.c — checks one event object against the definition table (defs.c) and fills a
 * pe_event_t that borrows from the cJSON tree.
 *
 * Invariants:
 *  1. Pure: no I/O, no allocation, no globals other than read-only tables; thread-safe.
 *  2. Bounded work: every object is walked once; `custom` and free properties stop counting at
 *     PE_EVENT_CUSTOM_MAX_KEYS keys, so duplicate-key checks there are O(keys²) ≤ 50².
 *  3. Every refusal returns PE_EINVAL with a code from the list in pe/events.h and a message
 *     "<path>: <what is wrong>" in valid UTF-8 (quoted keys are cut at a character boundary
 *     and control bytes in them replaced).
 *  4. A key given twice is refused wherever the validator reads keys (JSON parsers disagree on
 *     which copy wins; the stored event must be the validated one).
 *  5. Serialised sizes are what cJSON_PrintUnformatted would produce, counted without
 *     allocating.
 *  6. A number that is not finite (cJSON reads 1e400 as inf and would store null) is refused
 *     with the one rule of pe/core.h: out_of_range, "<path of the number>: must be a finite
 *     number …", the path down to the number itself (properties.n, custom.a[2]).
 *
 * Depth of free objects (`custom`, custom events' `properties`): the object itself is level 1;
 * an object or array inside it is level 2, and so on up to PE_EVENT_CUSTOM_MAX_DEPTH. Keys are
 * counted over all levels (array elements are not keys).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events_internal.h"

/* Paths are built only from the table's own names ("properties.items[499].quantity"), far
 * shorter than these caps, which exist so the compiler can prove the buffers suffice. */
#define PATH_PARENT_MAX 96
#define PATH_KEY_MAX    32
#define PATH_LEN        (PATH_PARENT_MAX + PATH_KEY_MAX + 24)

/* properties when the event has none: a read-only empty object. */
static const cJSON EMPTY_OBJECT = {.type = cJSON_Object};

/* ---- refusals --------------------------------------------------------------------------------
 */

/* sub = "<path>.<key>", each part cut at its maximum (as "%.*s.%.*s" would, without printf:
 * this runs for every property of every event). */
static void path_join(char sub[PATH_LEN], const char *path, const char *key)
{
    size_t a = strnlen(path, PATH_PARENT_MAX), b = strnlen(key, PATH_KEY_MAX);
    memcpy(sub, path, a);
    sub[a] = '.';
    memcpy(sub + a + 1, key, b);
    sub[a + 1 + b] = '\0';
}

/* sub = "<path>[<i>]", the path cut at its maximum. */
static void path_index(char sub[PATH_LEN], const char *path, size_t i)
{
    char digits[24], *d = digits + sizeof digits;
    do
        *--d = (char)('0' + i % 10);
    while (i /= 10);
    size_t a = strnlen(path, PATH_PARENT_MAX), b = (size_t)(digits + sizeof digits - d);
    memcpy(sub, path, a);
    sub[a] = '[';
    memcpy(sub + a + 1, d, b);
    sub[a + 1 + b] = ']';
    sub[a + 2 + b] = '\0';
}

/* ---- serialised size (as cJSON_PrintUnformatted) ---------------------------------------------
 */

static size_t string_size(const char *s)
{
    size_t n = 2;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '\b' || *p == '\f' || *p == '\n' || *p == '\r' ||
            *p == '\t')
            n += 2;
        else if (*p < 0x20)
            n += 6;
        else
            n += 1;
    }
    return n;
}

static size_t number_size(const cJSON *item)
{
    char tmp[32];
    double d = item->valuedouble;
    if (isnan(d) || isinf(d))
        return 4;                      /* null */
    if (d == (double)item->valueint) { /* cJSON prints these with %d: count the digits */
        long long v = item->valueint;
        size_t n = v < 0 ? 2 : 1;
        for (unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
             u >= 10; u /= 10)
            n++;
        return n;
    }
    int n = snprintf(tmp, sizeof tmp, "%1.15g", d);
    char *end = NULL;
    double back = strtod(tmp, &end);
    if (end == tmp || back != d)
        n = snprintf(tmp, sizeof tmp, "%1.17g", d);
    return (size_t)n;
}

/* The longest text cJSON prints for a number: "%1.17g" of a negative subnormal. */
#define NUMBER_SIZE_BOUND 24

/* Size of item, or a value > limit as soon as it is known to exceed limit. With exact = false,
 * a number that is not an integer counts as NUMBER_SIZE_BOUND bytes instead of being printed:
 * an upper bound, cheap, and enough whenever it is within the limit. */
static size_t json_size_pass(const cJSON *item, size_t limit, bool exact)
{
    switch (item->type & 0xFF) {
    case cJSON_False:
        return 5;
    case cJSON_True:
    case cJSON_NULL:
        return 4;
    case cJSON_Number:
        if (!exact && item->valuedouble != (double)item->valueint)
            return NUMBER_SIZE_BOUND;
        return number_size(item);
    case cJSON_String:
        return item->valuestring ? string_size(item->valuestring) : 4;
    case cJSON_Raw:
        return item->valuestring ? strlen(item->valuestring) : 0;
    case cJSON_Array:
    case cJSON_Object: {
        bool object = (item->type & 0xFF) == cJSON_Object;
        size_t n = 2;
        for (const cJSON *c = item->child; c; c = c->next) {
            if (c != item->child)
                n++; /* , */
            if (object)
                n += string_size(c->string ? c->string : "") + 1; /* "key": */
            n += json_size_pass(c, limit, exact);
            if (n > limit)
                return n;
        }
        return n;
    }
    default:
        return 0;
    }
}

/* Within limit: a value ≤ limit (an upper bound of the size cJSON_PrintUnformatted would
 * print). Beyond it: a value > limit. Printing numbers is the costly part, so a bound that
 * counts every non-integer as NUMBER_SIZE_BOUND bytes comes first, and the exact size is
 * worked out only when that bound is over the limit. */
static size_t json_size(const cJSON *item, size_t limit)
{
    size_t bound = json_size_pass(item, limit, false);
    return bound <= limit ? bound : json_size_pass(item, limit, true);
}

/* ---- scalars ---------------------------------------------------------------------------------
 */

/* A string of min..max bytes. */
static int check_string(const cJSON *v, const char *path, size_t min, size_t max, pe_refusal_t *err)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be a string", path);
    size_t n = strlen(v->valuestring);
    if (n < min)
        return pe_refuse(err, PE_EINVAL, "invalid_format", "%s: must not be empty", path);
    if (n > max)
        return pe_refuse(err, PE_EINVAL, "too_long", "%s: must be at most %zu bytes", path, max);
    return 0;
}

/* sessionId, anonymousId, userId, storeId: 1..PE_EVENT_ID_MAX bytes, no control characters. */
static int check_id(const cJSON *v, const char *path, pe_refusal_t *err)
{
    int rc = check_string(v, path, 1, PE_EVENT_ID_MAX, err);
    if (rc == 0 && pe_text_has_control(v->valuestring, strlen(v->valuestring)))
        rc = pe_refuse(err, PE_EINVAL, "invalid_format", "%s: " PE_TEXT_CONTROL_RULE, path);
    return rc;
}

void pe_events_id_canonical(const char *event_id, char out[PE_EVENT_UUID_LEN + 1])
{
    size_t i = 0;
    for (; i < PE_EVENT_UUID_LEN && event_id[i]; i++) {
        char c = event_id[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[i] = '\0';
}

static bool upper_code(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return s[len] == '\0';
}

static int check_timestamp(const cJSON *v, const char *path, int64_t *out, pe_refusal_t *err)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be a string", path);
    if (pe_time_parse_rfc3339(v->valuestring, out) != 0)
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s: must be an RFC 3339 date-time with a time zone, "
                         "such as 2026-11-24T10:00:00.000Z",
                         path);
    return 0;
}

/* ---- typed properties ------------------------------------------------------------------------
 */

static int check_props(const cJSON *obj, const pe_prop_def_t *props, size_t nprops,
                       const char *path, pe_refusal_t *err);

static int check_items(const cJSON *v, const pe_prop_def_t *def, const char *path,
                       pe_refusal_t *err)
{
    if (!cJSON_IsArray(v))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be an array", path);
    size_t n = 0;
    for (const cJSON *c = v->child; c && (double)n <= def->max; c = c->next)
        n++;
    if ((double)n < def->min || (double)n > def->max)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: must have %.0f..%.0f items", path,
                         def->min, def->max);
    size_t i = 0;
    char sub[PATH_LEN];
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        path_index(sub, path, i);
        if (!cJSON_IsObject(c))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be an object", sub);
        int rc = check_props(c, pe_events_item_props, pe_events_item_nprops, sub, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int check_prop(const cJSON *v, const pe_prop_def_t *def, const char *path, pe_refusal_t *err)
{
    switch (def->type) {
    case PE_PROP_STRING:
        return check_string(v, path, 1, def->max_len, err);
    case PE_PROP_NUMBER:
        if (!cJSON_IsNumber(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be a number %.15g..%.15g",
                             path, def->min, def->max);
        if (!isfinite(v->valuedouble)) /* invariant 6 */
            return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: " PE_JSON_NONFINITE_RULE, path);
        if (v->valuedouble < def->min || v->valuedouble > def->max)
            return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: must be a number %.15g..%.15g",
                             path, def->min, def->max);
        return 0;
    case PE_PROP_INTEGER:
        if (!cJSON_IsNumber(v) ||
            (isfinite(v->valuedouble) && v->valuedouble != floor(v->valuedouble)))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be an integer %.15g..%.15g",
                             path, def->min, def->max);
        if (!isfinite(v->valuedouble)) /* invariant 6 */
            return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: " PE_JSON_NONFINITE_RULE, path);
        if (v->valuedouble < def->min || v->valuedouble > def->max)
            return pe_refuse(err, PE_EINVAL, "out_of_range", "%s: must be an integer %.15g..%.15g",
                             path, def->min, def->max);
        return 0;
    case PE_PROP_BOOLEAN:
        if (!cJSON_IsBool(v))
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be a boolean", path);
        return 0;
    case PE_PROP_CURRENCY:
    case PE_PROP_COUNTRY: {
        bool currency = def->type == PE_PROP_CURRENCY;
        const char *what = currency ? "an ISO 4217 currency code (3 upper-case letters)"
                                    : "an ISO 3166-1 alpha-2 country code (2 upper-case letters)";
        if (!cJSON_IsString(v) || !v->valuestring)
            return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be %s", path, what);
        if (!upper_code(v->valuestring, currency ? 3 : 2))
            return pe_refuse(err, PE_EINVAL, "invalid_format", "%s: must be %s", path, what);
        return 0;
    }
    case PE_PROP_ITEMS:
        return check_items(v, def, path, err);
    }
    return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: has no known type", path);
}

/* obj's keys against props: unknown keys, keys given twice, wrong values, missing ones. */
static int check_props(const cJSON *obj, const pe_prop_def_t *props, size_t nprops,
                       const char *path, pe_refusal_t *err)
{
    uint64_t seen = 0;
    char sub[PATH_LEN], q[PE_JSON_KEY_QUOTE_MAX + 4];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        size_t k = 0;
        while (k < nprops && strcmp(props[k].name, key) != 0)
            k++;
        if (k == nprops)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s.%s: unknown field", path,
                             pe_json_quote_key(key, q));
        if (seen & (UINT64_C(1) << k))
            return pe_refuse(err, PE_EINVAL, "invalid_format", "%s.%s: given twice", path, key);
        seen |= UINT64_C(1) << k;
        path_join(sub, path, key);
        int rc = check_prop(c, &props[k], sub, err);
        if (rc != 0)
            return rc;
    }
    for (size_t k = 0; k < nprops; k++)
        if (props[k].required && !(seen & (UINT64_C(1) << k)))
            return pe_refuse(err, PE_EINVAL, "missing_field", "%s.%s: required", path,
                             props[k].name);
    return 0;
}

/* ---- free objects (custom, custom events' properties) ----------------------------------------
 */

typedef struct {
    const char *path; /* "custom" or "properties" */
    const cJSON *root;
    size_t keys;
    pe_refusal_t *err;
} free_walk_t;

static int walk_free(free_walk_t *w, const cJSON *node, int depth)
{
    bool object = cJSON_IsObject(node);
    for (const cJSON *c = node->child; c; c = c->next) {
        if (object) {
            if (++w->keys > PE_EVENT_CUSTOM_MAX_KEYS)
                return pe_refuse(w->err, PE_EINVAL, "too_large",
                                 "%s: more than %d keys (all levels)", w->path,
                                 PE_EVENT_CUSTOM_MAX_KEYS);
            for (const cJSON *s = node->child; s != c; s = s->next)
                if (strcmp(s->string ? s->string : "", c->string ? c->string : "") == 0) {
                    char q[PE_JSON_KEY_QUOTE_MAX + 4];
                    return pe_refuse(w->err, PE_EINVAL, "invalid_format",
                                     "%s: key '%s' given twice", w->path,
                                     pe_json_quote_key(c->string ? c->string : "", q));
                }
        }
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            if (depth + 1 > PE_EVENT_CUSTOM_MAX_DEPTH)
                return pe_refuse(w->err, PE_EINVAL, "too_large", "%s: nests deeper than %d levels",
                                 w->path, PE_EVENT_CUSTOM_MAX_DEPTH);
            int rc = walk_free(w, c, depth + 1);
            if (rc != 0)
                return rc;
        } else if (cJSON_IsNumber(c) && !isfinite(c->valuedouble)) {
            /* invariant 6: c is the first such number in document order, the one the shared
             * rule finds and names (the walk only gets here on a refusal: no cost otherwise) */
            char at[PATH_LEN];
            pe_json_find_nonfinite(w->root, w->path, at, sizeof at);
            return pe_refuse(w->err, PE_EINVAL, "out_of_range", "%s: " PE_JSON_NONFINITE_RULE, at);
        } else if (cJSON_IsInvalid(c) || cJSON_IsRaw(c)) {
            return pe_refuse(w->err, PE_EINVAL, "invalid_type",
                             "%s: holds a value that is not JSON", w->path);
        }
    }
    return 0;
}

static int check_free(const cJSON *v, const char *path, pe_refusal_t *err)
{
    if (!cJSON_IsObject(v))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be an object", path);
    free_walk_t w = {path, v, 0, err};
    int rc = walk_free(&w, v, 1);
    if (rc != 0)
        return rc;
    if (json_size(v, PE_EVENT_CUSTOM_MAX_BYTES) > PE_EVENT_CUSTOM_MAX_BYTES)
        return pe_refuse(err, PE_EINVAL, "too_large", "%s: larger than %d bytes serialised", path,
                         PE_EVENT_CUSTOM_MAX_BYTES);
    return 0;
}

/* ---- context ---------------------------------------------------------------------------------
 */

/* The value check_text_object found for the field called name, or NULL. */
static const char *text_value(const pe_events_text_field_t *fields, size_t n,
                              const char *const *found, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(fields[k].name, name) == 0)
            return found[k];
    return NULL;
}

/* An object whose keys are all optional strings of 0..max_len bytes; found[k] gets field k. */
static int check_text_object(const cJSON *obj, const pe_events_text_field_t *fields, size_t n,
                             const char *path, const char **found, pe_refusal_t *err)
{
    if (!cJSON_IsObject(obj))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "%s: must be an object", path);
    char sub[PATH_LEN], q[PE_JSON_KEY_QUOTE_MAX + 4];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        size_t k = 0;
        while (k < n && strcmp(fields[k].name, key) != 0)
            k++;
        if (k == n)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s.%s: unknown field", path,
                             pe_json_quote_key(key, q));
        if (found[k])
            return pe_refuse(err, PE_EINVAL, "invalid_format", "%s.%s: given twice", path, key);
        path_join(sub, path, key);
        int rc = check_string(c, sub, 0, fields[k].max_len, err);
        if (rc != 0)
            return rc;
        found[k] = c->valuestring;
    }
    return 0;
}

static int check_device(const cJSON *obj, pe_event_t *ev, pe_refusal_t *err)
{
    if (!cJSON_IsObject(obj))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "context.device: must be an object");
    char q[PE_JSON_KEY_QUOTE_MAX + 4];
    const cJSON *type = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        if (strcmp(key, "type") != 0)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "context.device.%s: unknown field",
                             pe_json_quote_key(key, q));
        if (type)
            return pe_refuse(err, PE_EINVAL, "invalid_format", "context.device.type: given twice");
        type = c;
    }
    if (!type)
        return pe_refuse(err, PE_EINVAL, "missing_field", "context.device.type: required");
    if (!cJSON_IsString(type) || !type->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "context.device.type: must be a string");
    for (size_t i = 0; i < pe_events_ndevice_types; i++)
        if (strcmp(type->valuestring, pe_events_device_types[i]) == 0) {
            ev->device_type = pe_events_device_types[i];
            return 0;
        }
    return pe_refuse(err, PE_EINVAL, "invalid_format",
                     "context.device.type: must be one of desktop, mobile, tablet, other");
}

enum { C_PAGE, C_UTM, C_DEVICE, C_USER_AGENT, C_LOCALE, C_COUNT };
static const char *const CONTEXT_KEYS[C_COUNT] = {"page", "utm", "device", "userAgent", "locale"};

static int check_context(const cJSON *obj, pe_event_t *ev, pe_refusal_t *err)
{
    if (!cJSON_IsObject(obj))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "context: must be an object");
    const cJSON *f[C_COUNT] = {NULL};
    char q[PE_JSON_KEY_QUOTE_MAX + 4];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        size_t k = 0;
        while (k < C_COUNT && strcmp(CONTEXT_KEYS[k], key) != 0)
            k++;
        if (k == C_COUNT)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "context.%s: unknown field",
                             pe_json_quote_key(key, q));
        if (f[k])
            return pe_refuse(err, PE_EINVAL, "invalid_format", "context.%s: given twice", key);
        f[k] = c;
    }
    int rc = 0;
    if (f[C_PAGE]) {
        const char *page[PE_EVENTS_TEXT_FIELDS_MAX] = {NULL};
        rc = check_text_object(f[C_PAGE], pe_events_page_fields, pe_events_page_nfields,
                               "context.page", page, err);
        if (rc != 0)
            return rc;
        ev->page_path = text_value(pe_events_page_fields, pe_events_page_nfields, page, "path");
    }
    if (f[C_UTM]) {
        const char *utm[PE_EVENTS_TEXT_FIELDS_MAX] = {NULL};
        rc = check_text_object(f[C_UTM], pe_events_utm_fields, pe_events_utm_nfields, "context.utm",
                               utm, err);
        if (rc != 0)
            return rc;
        ev->utm_source = text_value(pe_events_utm_fields, pe_events_utm_nfields, utm, "source");
        ev->utm_medium = text_value(pe_events_utm_fields, pe_events_utm_nfields, utm, "medium");
        ev->utm_campaign = text_value(pe_events_utm_fields, pe_events_utm_nfields, utm, "campaign");
    }
    if (f[C_DEVICE] && (rc = check_device(f[C_DEVICE], ev, err)) != 0)
        return rc;
    if (f[C_USER_AGENT] && (rc = check_string(f[C_USER_AGENT], "context.userAgent", 0,
                                              PE_EVENTS_USER_AGENT_MAX, err)) != 0)
        return rc;
    if (f[C_LOCALE] &&
        (rc = check_string(f[C_LOCALE], "context.locale", 0, PE_EVENTS_LOCALE_MAX, err)) != 0)
        return rc;
    ev->context = obj;
    return 0;
}

/* ---- the event -------------------------------------------------------------------------------
 */

enum {
    F_EVENT_ID,
    F_NAME,
    F_TIMESTAMP,
    F_SENT_AT,
    F_SESSION_ID,
    F_ANONYMOUS_ID,
    F_USER_ID,
    F_STORE_ID,
    F_CONTEXT,
    F_PROPERTIES,
    F_CUSTOM,
    F_COUNT
};
static const char *const FIELDS[F_COUNT] = {"eventId",   "name",        "timestamp", "sentAt",
                                            "sessionId", "anonymousId", "userId",    "storeId",
                                            "context",   "properties",  "custom"};

int pe_events_validate(const cJSON *obj, int64_t batch_sent_at_us, pe_event_t *ev,
                       pe_refusal_t *err)
{
    memset(ev, 0, sizeof *ev);
    err->code[0] = '\0';
    err->message[0] = '\0';
    if (!cJSON_IsObject(obj))
        return pe_refuse(err, PE_EINVAL, "invalid_type", "event: must be an object");

    const cJSON *f[F_COUNT] = {NULL};
    char q[PE_JSON_KEY_QUOTE_MAX + 4];
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        size_t k = 0;
        while (k < F_COUNT && strcmp(FIELDS[k], key) != 0)
            k++;
        if (k == F_COUNT)
            return pe_refuse(err, PE_EINVAL, "unknown_field", "%s: unknown field",
                             pe_json_quote_key(key, q));
        if (f[k])
            return pe_refuse(err, PE_EINVAL, "invalid_format", "%s: given twice", key);
        f[k] = c;
    }
    static const int REQUIRED[] = {F_EVENT_ID, F_NAME, F_TIMESTAMP, F_SESSION_ID, F_ANONYMOUS_ID};
    for (size_t i = 0; i < PE_ARRAY_LEN(REQUIRED); i++)
        if (!f[REQUIRED[i]])
            return pe_refuse(err, PE_EINVAL, "missing_field", "%s: required", FIELDS[REQUIRED[i]]);

    const cJSON *v = f[F_EVENT_ID];
    if (!cJSON_IsString(v) || !v->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "eventId: must be a string");
    if (!pe_uuid_text_valid(v->valuestring))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "eventId: must be a UUID (8-4-4-4-12 hex digits)");

    v = f[F_NAME];
    if (!cJSON_IsString(v) || !v->valuestring)
        return pe_refuse(err, PE_EINVAL, "invalid_type", "name: must be a string");
    const pe_event_def_t *def = pe_events_lookup(v->valuestring);
    if (!def)
        return pe_refuse(err, PE_EINVAL, "unknown_event",
                         "name: unknown event '%s' (expected a defined event or "
                         "custom.<entity>.<action>)",
                         pe_json_quote_key(v->valuestring, q));

    int64_t ts = 0, sent_at = 0;
    int rc = check_timestamp(f[F_TIMESTAMP], "timestamp", &ts, err);
    if (rc == 0 && f[F_SENT_AT])
        rc = check_timestamp(f[F_SENT_AT], "sentAt", &sent_at, err);
    if (rc == 0)
        rc = check_id(f[F_SESSION_ID], "sessionId", err);
    if (rc == 0)
        rc = check_id(f[F_ANONYMOUS_ID], "anonymousId", err);
    if (rc == 0 && f[F_USER_ID])
        rc = check_id(f[F_USER_ID], "userId", err);
    if (rc == 0 && f[F_STORE_ID])
        rc = check_id(f[F_STORE_ID], "storeId", err);
    if (rc == 0 && f[F_CONTEXT])
        rc = check_context(f[F_CONTEXT], ev, err);
    if (rc != 0)
        goto out;

    const cJSON *props = f[F_PROPERTIES] ? f[F_PROPERTIES] : &EMPTY_OBJECT;
    if (def == &pe_events_custom_def)
        rc = check_free(props, "properties", err);
    else if (!cJSON_IsObject(props))
        rc = pe_refuse(err, PE_EINVAL, "invalid_type", "properties: must be an object");
    else
        rc = check_props(props, def->props, def->nprops, "properties", err);
    if (rc == 0 && f[F_CUSTOM])
        rc = check_free(f[F_CUSTOM], "custom", err);
    if (rc == 0 && json_size(obj, PE_EVENT_MAX_BYTES) > PE_EVENT_MAX_BYTES)
        rc = pe_refuse(err, PE_EINVAL, "too_large", "event: larger than %d bytes serialised",
                       PE_EVENT_MAX_BYTES);
    if (rc != 0)
        goto out;

    ev->def = def;
    ev->event_id = f[F_EVENT_ID]->valuestring;
    ev->name = f[F_NAME]->valuestring;
    ev->timestamp_us = ts;
    ev->sent_at_us = f[F_SENT_AT] ? sent_at : batch_sent_at_us;
    ev->session_id = f[F_SESSION_ID]->valuestring;
    ev->anonymous_id = f[F_ANONYMOUS_ID]->valuestring;
    ev->user_id = f[F_USER_ID] ? f[F_USER_ID]->valuestring : NULL;
    ev->store_id = f[F_STORE_ID] ? f[F_STORE_ID]->valuestring : NULL;
    ev->properties = props;
    ev->custom = f[F_CUSTOM];
out:
    if (rc != 0)
        memset(ev, 0, sizeof *ev); /* no half-filled event escapes a refusal */
    return rc;
}
