/*
 * pe/events.h — the customer-journey event model: every event type defined once (name, funnel
 * step, properties with types and bounds), the validator that checks an event against that
 * definition, and the JSON Schema (2020-12) exported from the same definition.
 *
 * Invariants:
 *  1. The definition table is the single source of truth: the validator, the JSON Schema
 *     export, and (through the exported schema and the shared corpus) the SDK's Zod schemas all
 *     derive from it.
 *  2. Validation is pure (no I/O, no globals), thread-safe, and bounded: every string, array,
 *     object and nesting level has a limit; a refusal carries a stable code and a message that
 *     names the failing path ("properties.quantity: must be an integer 1..10000").
 *  3. A validated pe_event_t borrows from the cJSON tree it came from; it lives as long as the
 *     tree does.
 */
#ifndef PE_EVENTS_H
#define PE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"

/* Bounds of the common fields (also exported in the JSON Schema). */
#define PE_EVENT_MAX_BYTES        32768 /* one event, serialised */
#define PE_EVENT_ID_MAX           64    /* sessionId, anonymousId, userId */
#define PE_EVENT_CUSTOM_MAX_KEYS  50    /* keys in `custom` (all levels) */
#define PE_EVENT_CUSTOM_MAX_DEPTH 3     /* nesting inside `custom` */
#define PE_EVENT_CUSTOM_MAX_BYTES 4096
#define PE_EVENT_MAX_ITEMS        500 /* checkout.order.completed items[] */
#define PE_EVENT_BATCH_MAX_EVENTS 500 /* events[] per batch (the collector's limit too) */
#define PE_EVENT_UUID_LEN         36  /* eventId text: 8-4-4-4-12 hex digits */

/* Funnel steps, in order. */
typedef enum {
    PE_FUNNEL_NONE = 0,
    PE_FUNNEL_CART = 1,
    PE_FUNNEL_CHECKOUT = 2,
    PE_FUNNEL_SHIPPING = 3,
    PE_FUNNEL_PAYMENT = 4,
    PE_FUNNEL_CONFIRMATION = 5,
} pe_funnel_step_t;

typedef enum {
    PE_PROP_STRING,  /* max_len bytes of UTF-8, min_len ≥ 1 unless 0 */
    PE_PROP_NUMBER,  /* finite double in [min, max] */
    PE_PROP_INTEGER, /* whole number in [min, max] */
    PE_PROP_BOOLEAN,
    PE_PROP_CURRENCY, /* ISO 4217: three upper-case letters */
    PE_PROP_COUNTRY,  /* ISO 3166-1 alpha-2: two upper-case letters */
    PE_PROP_ITEMS,    /* array of line items (productId, quantity, price, …) */
} pe_prop_type_t;

typedef struct {
    const char *name;
    pe_prop_type_t type;
    bool required;
    double min, max; /* numbers and integers */
    size_t max_len;  /* strings */
    const char *description;
} pe_prop_def_t;

typedef struct {
    const char *name; /* "storefront.cart.item_added" */
    pe_funnel_step_t funnel_step;
    const pe_prop_def_t *props;
    size_t nprops;
    const char *description;
} pe_event_def_t;

/* The commerce set, in a stable order. Thread-safe (read-only data). */
size_t pe_events_count(void);
const pe_event_def_t *pe_events_at(size_t index);
/* The definition for a name, or NULL when unknown. "custom.<entity>.<action>" names (each part
 * [a-z0-9_]{1,64}) resolve to the free-form custom definition. */
const pe_event_def_t *pe_events_lookup(const char *name);
const char *pe_events_funnel_step_name(pe_funnel_step_t step); /* "cart", …, or NULL for NONE */

/* Refusals (pe_refusal_t) name the path. The codes:
 *   missing_field   a required field is absent
 *   invalid_type    wrong JSON type (null included); a fraction where an integer belongs
 *   out_of_range    a number outside its bounds or not finite; an array with too few or too many
 *                   elements
 *   too_long        a string longer than its bound (bounds count bytes of UTF-8)
 *   unknown_event   name is neither a defined event nor custom.<entity>.<action>
 *   unknown_field   a key the definition does not name (top level, context, typed properties,
 *                   line items)
 *   invalid_format  a string of the wrong shape: eventId not a UUID, a timestamp not RFC 3339, a
 *                   currency/country not upper-case ISO, an unknown device type, an empty string
 *                   where text is required, control characters in an id, a key given twice
 *   too_large       the event, `custom` or a custom event's properties exceed their key, depth or
 *                   byte bounds */

/* A validated event. Strings are borrowed from the cJSON tree (NULL when absent). */
typedef struct {
    const pe_event_def_t *def;
    /* The UUID text as sent: 8-4-4-4-12 hex digits in either case (RFC 9562 reads UUIDs case-
     * insensitively). The idempotency key is its lower-case form: store and compare
     * pe_events_id_canonical(event_id), never the text as sent. */
    const char *event_id;
    const char *name;
    int64_t timestamp_us; /* as the client sent it (Unix µs) */
    int64_t sent_at_us;   /* the event's or the batch's sentAt, 0 when absent */
    const char *session_id;
    const char *anonymous_id;
    const char *user_id;
    const cJSON *context;    /* object or NULL */
    const cJSON *properties; /* object (possibly empty) */
    const cJSON *custom;     /* object or NULL */
    /* context fields the storage indexes (borrowed, NULL when absent) */
    const char *page_path;
    const char *utm_source, *utm_medium, *utm_campaign;
    const char *device_type; /* "desktop" | "mobile" | "tablet" | "other" */
    /* storeId when the event carries one (a string of 1..64 printable bytes), else NULL. The
     * validator does not know the caller's store: the caller refuses an event whose store_id
     * differs (case-insensitively) from the key's store. */
    const char *store_id;
} pe_event_t;

/* Validates one event object. batch_sent_at_us (0 = none) is the batch-level sentAt used when
 * the event has none. Returns 0 with *ev filled, or PE_EINVAL with *err filled (and *ev zeroed).
 * On success ev->properties is never NULL: a read-only empty object stands in for an absent
 * one. Pure, allocation-free and thread-safe. */
int pe_events_validate(const cJSON *obj, int64_t batch_sent_at_us, pe_event_t *ev,
                       pe_refusal_t *err);

/* Writes the canonical (lower-case) form of a validated event_id into out (NUL-terminated).
 * Thread-safe. */
void pe_events_id_canonical(const char *event_id, char out[PE_EVENT_UUID_LEN + 1]);

/* Appends the JSON Schema 2020-12 document describing one event (a oneOf over the types,
 * discriminated by name) and the batch envelope ({"events":[…]}, $defs). Returns 0 or
 * PE_ENOMEM. */
int pe_events_json_schema(pe_buf_t *out);

/* ---- Segment's Tracking API (segment.c) ------------------------------------------------------ */

/* Segment's bound of one message, serialised compactly (its libraries keep to it). */
#define PE_EVENTS_SEGMENT_MAX_MESSAGE (32 * 1024)

/* What mapping Segment messages needs besides the body. The caller reads each of these (the
 * mapping reads no clock, database or random source of its own). */
typedef struct {
    const char *store_id;       /* the key's store: part of every eventId named by a messageId */
    const char *store_currency; /* ISO 4217 code for commerce events that give none; NULL: none */
    int64_t received_at_us;     /* the timestamp of a message with none, absent a batch sentAt */
    unsigned char seed[32];     /* fresh random bytes per request: the eventIds of messages
                                   without a messageId derive from them and the message's index */
} pe_events_segment_in_t;

typedef struct {
    cJSON *events;             /* owned by the caller (cJSON_Delete): element i is message i */
    int64_t batch_sent_at_us;  /* the envelope's sentAt (0 when none), for the collector */
    bool wants_store_currency; /* a commerce event gave no currency and store_currency was NULL:
                                  mapping again with it changes only those events */
} pe_events_segment_out_t;

/* Refuses a body that is not a JSON object, in pe_events_segment_map's words (the write key
 * may be inside the body, so a caller checks this before it authenticates). type as below.
 * Returns 0, or PE_EINVAL with *err ("invalid_request"). Pure, thread-safe. */
int pe_events_segment_check_body(const cJSON *body, const char *type, pe_refusal_t *err);

/* Maps a Segment request body to native events: type NULL for {"batch":[…]} (POST /v1/batch),
 * else the body is one message of that type ("track", "page", "identify" …). A message that
 * cannot be translated is handed over as sent, for the validator to refuse by index. Returns 0
 * with *out filled; PE_EINVAL ("invalid_request") or PE_ETOOBIG ("payload_too_large") with *err
 * when the envelope is refused; PE_ENOMEM. *out is emptied first and holds nothing on failure.
 * body and in are borrowed. Pure (invariant 2 of src/events/segment.c), thread-safe. */
int pe_events_segment_map(const cJSON *body, const char *type, const pe_events_segment_in_t *in,
                          pe_events_segment_out_t *out, pe_refusal_t *err);

#endif /* PE_EVENTS_H */
