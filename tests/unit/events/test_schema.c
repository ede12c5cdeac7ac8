/*
 * test_schema.c — the JSON Schema export (pe_events_json_schema) against the definition table.
 *
 * Invariants checked:
 *  1. The document is JSON with $schema 2020-12 and the published $id; it is the same every time.
 *  2. $defs holds one entry per event type (keyed by name) plus customEvent, and the top-level
 *     oneOf references each once.
 *  3. Every bound in the schema equals the table's (string maxLength, number and integer
 *     minimum/maximum, items minItems/maxItems, required lists), walking the table rather than
 *     restating it; a few spot checks pin well-known values (quantity ≤ 10000).
 *  4. Every object schema that lists properties is closed (additionalProperties: false), like
 *     the validator; `properties` is required exactly when the type has a required property.
 *  5. The batch envelope caps events at the collector's limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/events.h"
#include "pe_test.h"

static cJSON *export_schema(void)
{
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_events_json_schema(&b), 0);
    cJSON *j = NULL;
    char err[128];
    if (pe_json_parse(b.data, b.len, &j, err, sizeof err) != 0)
        fail_msg("the export is not JSON: %s", err);
    pe_buf_free(&b);
    return j;
}

static const cJSON *at(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v)
        fail_msg("missing key %s", key);
    return v;
}

static double num(const cJSON *j, const char *key)
{
    const cJSON *v = at(j, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *j, const char *key)
{
    const cJSON *v = at(j, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static bool array_has(const cJSON *array, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, array)
    {
        if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
            return true;
    }
    return false;
}

static void test_document(void **state)
{
    (void)state;
    cJSON *j = export_schema();
    assert_string_equal(str(j, "$schema"), "https://json-schema.org/draft/2020-12/schema");
    assert_string_equal(str(j, "$id"), "https://profit-engine.dev/schemas/events.json");

    pe_buf_t a = PE_BUF_INIT, b = PE_BUF_INIT;
    assert_int_equal(pe_events_json_schema(&a), 0);
    assert_int_equal(pe_events_json_schema(&b), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    pe_buf_free(&a);
    pe_buf_free(&b);

    /* Appends: what was in the buffer stays. */
    pe_buf_t c = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&c, "x"), 0);
    assert_int_equal(pe_events_json_schema(&c), 0);
    assert_true(c.len > 1000 && c.data[0] == 'x' && c.data[1] == '{');
    pe_buf_free(&c);
    cJSON_Delete(j);
}

static void test_one_def_per_event(void **state)
{
    (void)state;
    cJSON *j = export_schema();
    const cJSON *defs = at(j, "$defs");
    const cJSON *one_of = at(j, "oneOf");
    assert_int_equal(cJSON_GetArraySize(one_of), (int)pe_events_count() + 1);
    char ref[160];
    for (size_t i = 0; i < pe_events_count(); i++) {
        const pe_event_def_t *def = pe_events_at(i);
        const cJSON *d = at(defs, def->name);
        assert_string_equal(str(d, "title"), def->name);
        assert_string_equal(str(at(at(d, "properties"), "name"), "const"), def->name);
        snprintf(ref, sizeof ref, "#/$defs/%s", def->name);
        assert_string_equal(str(cJSON_GetArrayItem(one_of, (int)i), "$ref"), ref);
    }
    const cJSON *custom = at(defs, "customEvent");
    assert_string_equal(str(at(at(custom, "properties"), "name"), "pattern"),
                        "^custom\\.[a-z0-9_]{1,64}\\.[a-z0-9_]{1,64}$");
    assert_string_equal(str(cJSON_GetArrayItem(one_of, (int)pe_events_count()), "$ref"),
                        "#/$defs/customEvent");
    cJSON_Delete(j);
}

/* Checks schema `props` (an object schema) against the table. */
static void check_props(const cJSON *schema, const pe_prop_def_t *props, size_t n,
                        const char *where)
{
    assert_string_equal(str(schema, "type"), "object");
    assert_true(cJSON_IsFalse(at(schema, "additionalProperties")));
    const cJSON *members = at(schema, "properties");
    const cJSON *required = cJSON_GetObjectItemCaseSensitive(schema, "required");
    assert_int_equal(cJSON_GetArraySize(members), (int)n);
    for (size_t k = 0; k < n; k++) {
        const pe_prop_def_t *p = &props[k];
        const cJSON *s = at(members, p->name);
        if (p->required != (required && array_has(required, p->name)))
            fail_msg("%s.%s: required differs from the table", where, p->name);
        switch (p->type) {
        case PE_PROP_STRING:
            assert_string_equal(str(s, "type"), "string");
            assert_int_equal(num(s, "minLength"), 1);
            assert_int_equal(num(s, "maxLength"), p->max_len);
            break;
        case PE_PROP_NUMBER:
        case PE_PROP_INTEGER:
            assert_string_equal(str(s, "type"), p->type == PE_PROP_NUMBER ? "number" : "integer");
            assert_true(num(s, "minimum") == p->min);
            assert_true(num(s, "maximum") == p->max);
            break;
        case PE_PROP_BOOLEAN:
            assert_string_equal(str(s, "type"), "boolean");
            break;
        case PE_PROP_CURRENCY:
            assert_string_equal(str(s, "$ref"), "#/$defs/currency");
            break;
        case PE_PROP_COUNTRY:
            assert_string_equal(str(s, "$ref"), "#/$defs/country");
            break;
        case PE_PROP_ITEMS:
            assert_string_equal(str(s, "type"), "array");
            assert_true(num(s, "minItems") == p->min);
            assert_true(num(s, "maxItems") == p->max);
            assert_string_equal(str(at(s, "items"), "$ref"), "#/$defs/lineItem");
            break;
        }
    }
}

static void test_bounds_equal_the_table(void **state)
{
    (void)state;
    cJSON *j = export_schema();
    const cJSON *defs = at(j, "$defs");
    for (size_t i = 0; i < pe_events_count(); i++) {
        const pe_event_def_t *def = pe_events_at(i);
        const cJSON *d = at(defs, def->name);
        check_props(at(at(d, "properties"), "properties"), def->props, def->nprops, def->name);
        bool any = false;
        for (size_t k = 0; k < def->nprops; k++)
            any = any || def->props[k].required;
        const cJSON *req = at(d, "required");
        assert_int_equal(array_has(req, "properties"), any);
        static const char *const COMMON[] = {"eventId", "name", "timestamp", "sessionId",
                                             "anonymousId"};
        for (size_t k = 0; k < PE_ARRAY_LEN(COMMON); k++)
            assert_true(array_has(req, COMMON[k]));
    }
    /* the line items, through the ITEMS property of checkout.order.completed */
    const pe_event_def_t *order = pe_events_lookup("checkout.order.completed");
    for (size_t k = 0; k < order->nprops; k++)
        assert_true(order->props[k].type != PE_PROP_ITEMS ||
                    order->props[k].max == PE_EVENT_MAX_ITEMS);
    const cJSON *item = at(defs, "lineItem");
    assert_int_equal(num(at(at(item, "properties"), "quantity"), "maximum"), 10000);
    assert_int_equal(num(at(at(item, "properties"), "quantity"), "minimum"), 1);
    assert_true(array_has(at(item, "required"), "quantity"));
    const cJSON *added = at(at(at(defs, "storefront.cart.item_added"), "properties"), "properties");
    assert_int_equal(num(at(at(added, "properties"), "quantity"), "maximum"), 10000);
    assert_true(num(at(at(added, "properties"), "price"), "maximum") == 1e9);

    /* common parts */
    const cJSON *id = at(defs, "identifier");
    assert_int_equal(num(id, "maxLength"), PE_EVENT_ID_MAX);
    const cJSON *custom = at(defs, "custom");
    assert_int_equal(num(custom, "maxProperties"), PE_EVENT_CUSTOM_MAX_KEYS);
    const cJSON *ctx = at(at(defs, "context"), "properties");
    assert_int_equal(num(at(at(at(ctx, "page"), "properties"), "url"), "maxLength"), 2048);
    assert_int_equal(num(at(ctx, "locale"), "maxLength"), 35);
    const cJSON *types = at(at(at(at(ctx, "device"), "properties"), "type"), "enum");
    assert_int_equal(cJSON_GetArraySize(types), 4);
    assert_true(array_has(types, "desktop") && array_has(types, "other"));
    cJSON_Delete(j);
}

/* Depth of custom: level n's containers reference customValue<n+1>; the last holds scalars. */
static void test_custom_depth(void **state)
{
    (void)state;
    cJSON *j = export_schema();
    const cJSON *defs = at(j, "$defs");
    char name[32];
    snprintf(name, sizeof name, "customValue%d", PE_EVENT_CUSTOM_MAX_DEPTH + 1);
    const cJSON *leaf = at(defs, name);
    assert_false(array_has(at(leaf, "type"), "object"));
    assert_false(array_has(at(leaf, "type"), "array"));
    snprintf(name, sizeof name, "customValue%d", PE_EVENT_CUSTOM_MAX_DEPTH + 2);
    assert_null(cJSON_GetObjectItemCaseSensitive(defs, name));
    cJSON_Delete(j);
}

/* Every object schema with "properties" is closed. */
static void walk_closed(const cJSON *node, int *objects)
{
    if (cJSON_IsObject(node)) {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(node, "properties");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(node, "type");
        if (props && cJSON_IsObject(props) && cJSON_IsString(type) &&
            strcmp(type->valuestring, "object") == 0) {
            (*objects)++;
            if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(node, "additionalProperties")))
                fail_msg("an object schema with properties is open");
        }
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, node)
    {
        walk_closed(c, objects);
    }
}

static void test_closed_objects(void **state)
{
    (void)state;
    cJSON *j = export_schema();
    int objects = 0;
    walk_closed(j, &objects);
    /* events, their properties, line item, context and its page/utm/device, batch */
    assert_true(objects >= (int)pe_events_count() * 2 + 6);
    cJSON_Delete(j);
}

static void test_batch(void **state)
{
    (void)state;
    cJSON *j = export_schema();
    const cJSON *batch = at(at(j, "$defs"), "batch");
    const cJSON *events = at(at(batch, "properties"), "events");
    assert_string_equal(str(events, "type"), "array");
    assert_int_equal(num(events, "maxItems"), PE_EVENT_BATCH_MAX_EVENTS);
    assert_string_equal(str(at(events, "items"), "$ref"), "#");
    assert_string_equal(str(at(at(batch, "properties"), "sentAt"), "$ref"), "#/$defs/timestamp");
    assert_true(array_has(at(batch, "required"), "events"));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_one_def_per_event),
        cmocka_unit_test(test_bounds_equal_the_table),
        cmocka_unit_test(test_custom_depth),
        cmocka_unit_test(test_closed_objects),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
