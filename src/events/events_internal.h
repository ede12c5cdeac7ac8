/*
 * events_internal.h — what the files of src/events/ share and nobody else sees: the line-item
 * definition behind PE_PROP_ITEMS, the free-form custom definition, and the bounds of free
 * (custom) objects.
 *
 * Invariants:
 *  1. Everything here is read-only data defined once in defs.c; validate.c and schema.c read the
 *     same tables, so the validator and the exported JSON Schema cannot drift apart.
 */
#ifndef PE_EVENTS_INTERNAL_H
#define PE_EVENTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "pe/events.h"

/* The properties of one element of a PE_PROP_ITEMS array (productId, quantity, price, …). */
extern const pe_prop_def_t pe_events_item_props[];
extern const size_t pe_events_item_nprops;

/* The definition every "custom.<entity>.<action>" name resolves to: no declared properties;
 * `properties` is a free object bounded like `custom`. */
extern const pe_event_def_t pe_events_custom_def;

/* The pattern of a custom event name, for the JSON Schema (each part [a-z0-9_]{1,64}). */
#define PE_EVENTS_CUSTOM_NAME_PATTERN "^custom\\.[a-z0-9_]{1,64}\\.[a-z0-9_]{1,64}$"
#define PE_EVENTS_CUSTOM_PART_MAX     64

/* Fields of context.page and context.utm: optional strings of 0..max_len bytes. */
typedef struct {
    const char *name;
    size_t max_len;
} pe_events_text_field_t;

extern const pe_events_text_field_t pe_events_page_fields[];
extern const size_t pe_events_page_nfields;
extern const pe_events_text_field_t pe_events_utm_fields[];
extern const size_t pe_events_utm_nfields;
#define PE_EVENTS_TEXT_FIELDS_MAX 8 /* ≥ either count above (checked in defs.c) */
/* context.device.type: one of these. */
extern const char *const pe_events_device_types[];
extern const size_t pe_events_ndevice_types;

#define PE_EVENTS_USER_AGENT_MAX 1024 /* context.userAgent */
#define PE_EVENTS_LOCALE_MAX     35   /* context.locale: the longest BCP 47 tag in common use */

/* Regular expressions (ECMA-262 syntax, as JSON Schema uses) of what validate.c checks by hand. */
#define PE_EVENTS_UUID_PATTERN                                                                     \
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#define PE_EVENTS_ID_PATTERN "^[^\\u0000-\\u001f\\u007f]+$" /* no control characters */
#define PE_EVENTS_TIMESTAMP_PATTERN                                                                \
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{" \
    "2})$"
#define PE_EVENTS_CURRENCY_PATTERN "^[A-Z]{3}$"
#define PE_EVENTS_COUNTRY_PATTERN  "^[A-Z]{2}$"

/* True when name is "custom.<entity>.<action>" with each part [a-z0-9_]{1,64}. Thread-safe. */
bool pe_events_is_custom_name(const char *name);

#endif /* PE_EVENTS_INTERNAL_H */
