/*
 * schema.c — the JSON Schema (2020-12) of the events, generated from the definition table in
 * defs.c: one $defs entry per event type (keyed by its name), the common parts they share, a
 * top-level oneOf discriminated by `name`, and the batch envelope as $defs.batch.
 *
 * Invariants:
 *  1. No bound is written here by hand: every number comes from defs.c, events_internal.h or
 *     pe/events.h, the same places validate.c reads.
 *  2. Every object the validator closes is closed here too (additionalProperties: false), and a
 *     `properties` object with a required member makes `properties` itself required (the
 *     validator treats an absent `properties` as {}).
 *  3. What JSON Schema cannot say is weaker here, never stricter: maxLength counts characters
 *     where the validator counts bytes of UTF-8; `custom` states its per-level key bound and
 *     depth, not the total key count or byte size (both are in its description). A document the
 *     validator accepts always validates against this schema.
 */
#include <stdio.h>
#include <stdlib.h>

#include "events_internal.h"

#define SCHEMA_ID   "https://profit-engine.dev/schemas/events.json"
#define SCHEMA_2020 "https://json-schema.org/draft/2020-12/schema"

/* Builder state: the first failed allocation sets oom and every later call does nothing
 * useful, so callers check once at the end. */
typedef struct {
    bool oom;
} builder_t;

static cJSON *checked(builder_t *b, cJSON *item)
{
    if (!item)
        b->oom = true;
    return item;
}

static cJSON *add_object(builder_t *b, cJSON *parent, const char *key)
{
    return checked(b, parent ? cJSON_AddObjectToObject(parent, key) : NULL);
}

static cJSON *add_array(builder_t *b, cJSON *parent, const char *key)
{
    return checked(b, parent ? cJSON_AddArrayToObject(parent, key) : NULL);
}

static void add_string(builder_t *b, cJSON *parent, const char *key, const char *value)
{
    checked(b, parent ? cJSON_AddStringToObject(parent, key, value) : NULL);
}

static void add_number(builder_t *b, cJSON *parent, const char *key, double value)
{
    checked(b, parent ? cJSON_AddNumberToObject(parent, key, value) : NULL);
}

static void add_false(builder_t *b, cJSON *parent, const char *key)
{
    checked(b, parent ? cJSON_AddFalseToObject(parent, key) : NULL);
}

static cJSON *new_object(builder_t *b)
{
    return checked(b, cJSON_CreateObject());
}

/* Appends item to array; the array owns it from here (or it is freed on failure). */
static void push_item(builder_t *b, cJSON *array, cJSON *item)
{
    if (!item)
        return;
    if (!array || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        b->oom = true;
    }
}

static void push_string(builder_t *b, cJSON *array, const char *value)
{
    push_item(b, array, checked(b, cJSON_CreateString(value)));
}

static void scalar_types(builder_t *b, cJSON *o)
{
    cJSON *types = add_array(b, o, "type");
    push_string(b, types, "string");
    push_string(b, types, "number");
    push_string(b, types, "boolean");
    push_string(b, types, "null");
}

/* {"$ref": "#/$defs/<name>"} under key. */
static cJSON *add_ref(builder_t *b, cJSON *parent, const char *key, const char *def)
{
    char ref[160];
    snprintf(ref, sizeof ref, "#/$defs/%s", def);
    cJSON *o = add_object(b, parent, key);
    add_string(b, o, "$ref", ref);
    return o;
}

/* A string of min_len..max_len bytes (maxLength counts characters: see invariant 3). */
static void string_bounds(builder_t *b, cJSON *o, size_t min_len, size_t max_len)
{
    add_string(b, o, "type", "string");
    if (min_len)
        add_number(b, o, "minLength", (double)min_len);
    add_number(b, o, "maxLength", (double)max_len);
}

/* ---- properties from the definition table ---------------------------------------------------
 */

static void prop_schema(builder_t *b, cJSON *parent, const pe_prop_def_t *p)
{
    cJSON *o = NULL;
    switch (p->type) {
    case PE_PROP_STRING:
        o = add_object(b, parent, p->name);
        string_bounds(b, o, 1, p->max_len);
        break;
    case PE_PROP_NUMBER:
    case PE_PROP_INTEGER:
        o = add_object(b, parent, p->name);
        add_string(b, o, "type", p->type == PE_PROP_NUMBER ? "number" : "integer");
        add_number(b, o, "minimum", p->min);
        add_number(b, o, "maximum", p->max);
        break;
    case PE_PROP_BOOLEAN:
        o = add_object(b, parent, p->name);
        add_string(b, o, "type", "boolean");
        break;
    case PE_PROP_CURRENCY:
        o = add_ref(b, parent, p->name, "currency");
        break;
    case PE_PROP_COUNTRY:
        o = add_ref(b, parent, p->name, "country");
        break;
    case PE_PROP_ITEMS:
        o = add_object(b, parent, p->name);
        add_string(b, o, "type", "array");
        add_number(b, o, "minItems", p->min);
        add_number(b, o, "maxItems", p->max);
        add_ref(b, o, "items", "lineItem");
        break;
    }
    if (p->description)
        add_string(b, o, "description", p->description);
}

static bool any_required(const pe_prop_def_t *props, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (props[i].required)
            return true;
    return false;
}

/* A closed object schema of props into o. */
static void props_object(builder_t *b, cJSON *o, const pe_prop_def_t *props, size_t n)
{
    add_string(b, o, "type", "object");
    cJSON *members = add_object(b, o, "properties");
    for (size_t i = 0; i < n; i++)
        prop_schema(b, members, &props[i]);
    if (any_required(props, n)) {
        cJSON *req = add_array(b, o, "required");
        for (size_t i = 0; i < n; i++)
            if (props[i].required)
                push_string(b, req, props[i].name);
    }
    add_false(b, o, "additionalProperties");
}

/* ---- common parts ----------------------------------------------------------------------------
 */

static void text_object(builder_t *b, cJSON *parent, const char *key,
                        const pe_events_text_field_t *fields, size_t n)
{
    cJSON *o = add_object(b, parent, key);
    add_string(b, o, "type", "object");
    cJSON *members = add_object(b, o, "properties");
    for (size_t i = 0; i < n; i++)
        string_bounds(b, add_object(b, members, fields[i].name), 0, fields[i].max_len);
    add_false(b, o, "additionalProperties");
}

static void context_schema(builder_t *b, cJSON *defs)
{
    cJSON *o = add_object(b, defs, "context");
    add_string(b, o, "type", "object");
    add_string(b, o, "description", "Where the event happened; every member optional.");
    cJSON *members = add_object(b, o, "properties");
    text_object(b, members, "page", pe_events_page_fields, pe_events_page_nfields);
    text_object(b, members, "utm", pe_events_utm_fields, pe_events_utm_nfields);
    cJSON *device = add_object(b, members, "device");
    add_string(b, device, "type", "object");
    cJSON *type = add_object(b, add_object(b, device, "properties"), "type");
    add_string(b, type, "type", "string");
    cJSON *values = add_array(b, type, "enum");
    for (size_t i = 0; i < pe_events_ndevice_types; i++)
        push_string(b, values, pe_events_device_types[i]);
    push_string(b, add_array(b, device, "required"), "type");
    add_false(b, device, "additionalProperties");
    string_bounds(b, add_object(b, members, "userAgent"), 0, PE_EVENTS_USER_AGENT_MAX);
    string_bounds(b, add_object(b, members, "locale"), 0, PE_EVENTS_LOCALE_MAX);
    add_false(b, o, "additionalProperties");
}

/* custom: the object itself is level 1; "customValue<n>" is a value inside a level n-1
 * container: a scalar, or (while n ≤ PE_EVENT_CUSTOM_MAX_DEPTH) a level-n object or array. */
static void custom_schema(builder_t *b, cJSON *defs)
{
    char name[32], next[32], description[256];
    cJSON *o = add_object(b, defs, "custom");
    add_string(b, o, "type", "object");
    snprintf(description, sizeof description,
             "Free key/values: at most %d keys over all levels, %d levels of nesting (this object "
             "is level 1), %d bytes serialised.",
             PE_EVENT_CUSTOM_MAX_KEYS, PE_EVENT_CUSTOM_MAX_DEPTH, PE_EVENT_CUSTOM_MAX_BYTES);
    add_string(b, o, "description", description);
    add_number(b, o, "maxProperties", PE_EVENT_CUSTOM_MAX_KEYS);
    add_ref(b, o, "additionalProperties", "customValue2");

    for (int n = 2; n <= PE_EVENT_CUSTOM_MAX_DEPTH + 1; n++) {
        snprintf(name, sizeof name, "customValue%d", n);
        snprintf(next, sizeof next, "customValue%d", n + 1);
        o = add_object(b, defs, name);
        if (n > PE_EVENT_CUSTOM_MAX_DEPTH) {
            scalar_types(b, o);
            continue;
        }
        cJSON *any = add_array(b, o, "anyOf");
        cJSON *scalar = new_object(b);
        scalar_types(b, scalar);
        push_item(b, any, scalar);
        cJSON *object = new_object(b);
        add_string(b, object, "type", "object");
        add_number(b, object, "maxProperties", PE_EVENT_CUSTOM_MAX_KEYS);
        add_ref(b, object, "additionalProperties", next);
        push_item(b, any, object);
        cJSON *array = new_object(b);
        add_string(b, array, "type", "array");
        add_ref(b, array, "items", next);
        push_item(b, any, array);
    }
}

static void common_schemas(builder_t *b, cJSON *defs)
{
    cJSON *o = add_object(b, defs, "eventId");
    add_string(b, o, "type", "string");
    add_string(b, o, "pattern", PE_EVENTS_UUID_PATTERN);
    add_string(b, o, "description",
               "Client-made UUID, the idempotency key (compared in lower case).");

    o = add_object(b, defs, "timestamp");
    add_string(b, o, "type", "string");
    add_string(b, o, "format", "date-time");
    add_string(b, o, "pattern", PE_EVENTS_TIMESTAMP_PATTERN);
    add_string(b, o, "description",
               "RFC 3339 with upper-case T and Z or an offset; the date must exist; seconds "
               "00..59; at most 9 fractional digits.");

    o = add_object(b, defs, "identifier");
    string_bounds(b, o, 1, PE_EVENT_ID_MAX);
    add_string(b, o, "pattern", PE_EVENTS_ID_PATTERN);
    add_string(b, o, "description", "1..64 bytes of UTF-8 without control characters.");

    o = add_object(b, defs, "currency");
    add_string(b, o, "type", "string");
    add_string(b, o, "pattern", PE_EVENTS_CURRENCY_PATTERN);
    add_string(b, o, "description", "ISO 4217 code, upper case.");

    o = add_object(b, defs, "country");
    add_string(b, o, "type", "string");
    add_string(b, o, "pattern", PE_EVENTS_COUNTRY_PATTERN);
    add_string(b, o, "description", "ISO 3166-1 alpha-2 code, upper case.");

    context_schema(b, defs);
    custom_schema(b, defs);

    o = add_object(b, defs, "lineItem");
    props_object(b, o, pe_events_item_props, pe_events_item_nprops);
}

/* ---- events ----------------------------------------------------------------------------------
 */

/* The $defs entry of one event type under key. */
static void event_schema(builder_t *b, cJSON *defs, const char *key, const pe_event_def_t *def)
{
    bool custom = def == &pe_events_custom_def;
    cJSON *o = add_object(b, defs, key);
    add_string(b, o, "type", "object");
    add_string(b, o, "title", def->name);
    const char *step = pe_events_funnel_step_name(def->funnel_step);
    char description[512];
    snprintf(description, sizeof description, "%s%s%s%s", def->description ? def->description : "",
             step ? " Funnel step: " : "", step ? step : "", step ? "." : "");
    add_string(b, o, "description", description);

    cJSON *members = add_object(b, o, "properties");
    add_ref(b, members, "eventId", "eventId");
    cJSON *name = add_object(b, members, "name");
    if (custom) {
        add_string(b, name, "type", "string");
        add_string(b, name, "pattern", PE_EVENTS_CUSTOM_NAME_PATTERN);
    } else {
        add_string(b, name, "const", def->name);
    }
    add_ref(b, members, "timestamp", "timestamp");
    add_ref(b, members, "sentAt", "timestamp");
    add_ref(b, members, "sessionId", "identifier");
    add_ref(b, members, "anonymousId", "identifier");
    add_ref(b, members, "userId", "identifier");
    add_ref(b, members, "storeId", "identifier");
    add_ref(b, members, "context", "context");
    if (custom)
        add_ref(b, members, "properties", "custom");
    else
        props_object(b, add_object(b, members, "properties"), def->props, def->nprops);
    add_ref(b, members, "custom", "custom");

    cJSON *req = add_array(b, o, "required");
    static const char *const REQUIRED[] = {"eventId", "name", "timestamp", "sessionId",
                                           "anonymousId"};
    for (size_t i = 0; i < PE_ARRAY_LEN(REQUIRED); i++)
        push_string(b, req, REQUIRED[i]);
    if (!custom && any_required(def->props, def->nprops))
        push_string(b, req, "properties");
    add_false(b, o, "additionalProperties");
}

static void batch_schema(builder_t *b, cJSON *defs)
{
    cJSON *o = add_object(b, defs, "batch");
    add_string(b, o, "type", "object");
    add_string(b, o, "description", "The body of POST /v1/events.");
    cJSON *members = add_object(b, o, "properties");
    cJSON *events = add_object(b, members, "events");
    add_string(b, events, "type", "array");
    add_number(b, events, "maxItems", PE_EVENT_BATCH_MAX_EVENTS);
    cJSON *items = add_object(b, events, "items");
    add_string(b, items, "$ref", "#");
    add_ref(b, members, "sentAt", "timestamp");
    push_string(b, add_array(b, o, "required"), "events");
    add_false(b, o, "additionalProperties");
}

int pe_events_json_schema(pe_buf_t *out)
{
    int rc = PE_ENOMEM;
    builder_t b = {false};
    char *text = NULL;
    cJSON *root = checked(&b, cJSON_CreateObject());
    add_string(&b, root, "$schema", SCHEMA_2020);
    add_string(&b, root, "$id", SCHEMA_ID);
    add_string(&b, root, "title", "Profit Engine event");
    add_string(&b, root, "description",
               "One customer-journey event; a batch is #/$defs/batch. Generated from the "
               "server's definition table. String bounds are bytes of UTF-8 on the server "
               "(maxLength here counts characters).");
    cJSON *one_of = add_array(&b, root, "oneOf");
    cJSON *defs = add_object(&b, root, "$defs");
    common_schemas(&b, defs);
    char key[160];
    for (size_t i = 0; i < pe_events_count(); i++) {
        const pe_event_def_t *def = pe_events_at(i);
        event_schema(&b, defs, def->name, def);
        snprintf(key, sizeof key, "#/$defs/%s", def->name);
        cJSON *ref = new_object(&b);
        add_string(&b, ref, "$ref", key);
        push_item(&b, one_of, ref);
    }
    event_schema(&b, defs, "customEvent", &pe_events_custom_def);
    cJSON *ref = new_object(&b);
    add_string(&b, ref, "$ref", "#/$defs/customEvent");
    push_item(&b, one_of, ref);
    batch_schema(&b, defs);
    if (b.oom)
        goto out;
    text = cJSON_Print(root);
    if (!text)
        goto out;
    rc = pe_buf_puts(out, text);
out:
    free(text);
    cJSON_Delete(root);
    return rc;
}
