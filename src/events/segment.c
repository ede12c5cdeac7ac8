/*
 * segment.c — Segment's Tracking API (its spec and its e-commerce v2 events) mapped to native
 * events (the definitions of defs.c): the request body of POST /v1/batch, /v1/track, /v1/page or
 * /v1/identify in, the events array the collector takes out, or a refusal of the envelope.
 * src/api/segment.c is the HTTP side (write key, the store's currency, the collector).
 *
 * The envelope (type NULL: {"batch":[…], "sentAt", "context"}; else the body is one message),
 * checked in this order, each refusal {code, message} with the PE_E… code that picks the status:
 *   the body is not an object                           invalid_request    PE_EINVAL
 *   "batch" is not an array                             invalid_request    PE_EINVAL
 *   more than PE_EVENT_BATCH_MAX_EVENTS messages        payload_too_large  PE_ETOOBIG
 *   "sentAt" neither null nor an RFC 3339 timestamp     invalid_request    PE_EINVAL
 *   a message over PE_EVENTS_SEGMENT_MAX_MESSAGE bytes  payload_too_large  PE_ETOOBIG
 *   (serialised compactly)
 * Messages are never refused here: what cannot be translated goes on as sent (invariant 1).
 *
 * Mapping of the common fields (Segment spec → native event):
 *   messageId          eventId: itself when it is a UUID, else a name-based UUID (version 5
 *                      layout, SHA-256 of "segment" + storeId + messageId), so a retried message
 *                      keeps its eventId and is stored once; no messageId → a version 4 UUID
 *                      drawn from the caller's per-request seed and the message's index
 *   originalTimestamp  timestamp (else timestamp, else sentAt, else the batch's sentAt, else the
 *                      receive time the caller passes)
 *   sentAt             sentAt (the message's; the batch's goes to the collector)
 *   anonymousId        anonymousId (else userId: the collector needs one visitor id)
 *   userId             userId (numbers become text)
 *   (session)          context.sessionId, properties.sessionId / session_id, else anonymousId
 *   context            page {url, path, referrer, title}; campaign → utm {campaign (its name),
 *                      source, medium, term, content}, else the utm_* of the page URL;
 *                      device.type → desktop | mobile | tablet | other, else guessed from the
 *                      userAgent; userAgent; locale. A batch-level "context" fills what a
 *                      message lacks. Nothing else of context is kept (ip, library, os, traits:
 *                      not needed by the analytics, and some of it personal).
 *
 * Names:
 *   page                            storefront.page.viewed (url, path, referrer and title of
 *                                   the properties go to context.page)
 *   track Product Viewed            storefront.product.viewed
 *   track Product Added             storefront.cart.item_added (quantity defaults to 1)
 *   track Cart Viewed               storefront.cart.viewed (cartValue, itemCount)
 *   track Checkout Started          checkout.session.started (cartValue: value, revenue, total
 *                                   or the products' sum)
 *   track Checkout Step Completed   checkout.payment.submitted when payment_method is given,
 *                                   else checkout.shipping.submitted when shipping_method is
 *                                   given or step is 1, else
 *                                   custom.segment.checkout_step_completed
 *   track Payment Info Entered      checkout.payment.submitted
 *   track Order Completed           checkout.order.completed (value: revenue, else total,
 *                                   subtotal, value; products → items)
 *   track <any other name>          custom.segment.<snake_case_name>, properties as sent;
 *                                   custom.event keeps the exact name
 *   identify                        custom.segment.identify without properties: traits are
 *                                   personal data the analytics never read; the event keeps
 *                                   the userId ↔ anonymousId link
 *   screen / group / alias          custom.segment.screen | group | alias (name and
 *                                   properties / groupId / previousId)
 *   (event names match case-insensitively)
 *
 *   products[] → items[]: product_id (else productId, id, sku) → productId, variant →
 *   variantId, quantity (default 1), price, name, category. Numeric strings are read as
 *   numbers, numeric ids as text, currencies upper-cased; a commerce event without a currency
 *   gets the store's (out->wants_store_currency tells the caller it was needed and not given).
 *   What the native definition has no field for (brand, sku, url, coupon of a product,
 *   affiliation, …) goes to `custom`, as far as custom's bounds allow; a line item's other
 *   fields are dropped.
 *
 * Invariants:
 *  1. Message i of the body is element i of out->events, so the collector's rejected[].index
 *     points into the batch as sent. A message that cannot be translated (not an object, an
 *     unknown type, a track without an event name) is handed over as sent: the validator refuses
 *     it and the dead letter keeps it verbatim. Nothing is dropped unseen.
 *  2. Pure: the result is a function of (body, type, store id, store currency, receive time,
 *     seed) alone — no clock, no database, no random source, no globals. A retried batch (same
 *     messageIds) maps to the same eventIds and is stored once; mapping the same body twice with
 *     the same seed gives the same events.
 *  3. Free text is cut to the native bound (at a UTF-8 boundary); ids never are (a cut id would be
 *     another id). A value of the wrong type is copied as sent, so the validator refuses it with
 *     a message naming the native field, never dropped without a word.
 *  4. On a refusal or PE_ENOMEM nothing is handed out (out->events NULL).
 */
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "pe/events.h"

/* Bounds of the native fields the translation fills (defs.c); free text is cut to fit, ids never
 * are. */
#define PAGE_URL_MAX   2048
#define PAGE_PATH_MAX  1024
#define PAGE_TITLE_MAX 512
#define UTM_MAX        256
#define UA_MAX         1024
#define LOCALE_MAX     35
#define LABEL_MAX      256 /* product names, categories */
#define NAME_PART_MAX  64  /* a part of custom.<entity>.<action> */
#define MAX_USED       24  /* Segment properties one commerce mapping consumes */

/* ---- small JSON helpers ---------------------------------------------------------------------- */

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const char *get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);
    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

/* Length of s cut to at most max bytes, never inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Adds s (cut to max bytes) as a string; false on ENOMEM. */
static bool add_text(cJSON *obj, const char *key, const char *s, size_t max)
{
    char buf[PAGE_URL_MAX + 1];
    size_t n = utf8_cut(s, max < sizeof buf - 1 ? max : sizeof buf - 1);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return cJSON_AddStringToObject(obj, key, buf) != NULL;
}

/* An id: text as sent, an integer-valued number as its digits. Anything else is copied as sent, so
 * the validator refuses it with a message naming the field. NULL v adds nothing. */
static bool add_id(cJSON *obj, const char *key, const cJSON *v)
{
    if (!v)
        return true;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) < 1e15 &&
        v->valuedouble == floor(v->valuedouble)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.0f", v->valuedouble);
        return cJSON_AddStringToObject(obj, key, buf) != NULL;
    }
    cJSON *copy = cJSON_Duplicate(v, true);
    return copy && cJSON_AddItemToObject(obj, key, copy);
}

/* Text cut to max bytes; numbers become text; other types are copied as sent. */
static bool add_label(cJSON *obj, const char *key, const cJSON *v, size_t max)
{
    if (v && cJSON_IsString(v) && v->valuestring)
        return add_text(obj, key, v->valuestring, max);
    return add_id(obj, key, v);
}

/* A number; a string that is entirely a finite number counts as one. */
static bool number_of(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        *out = v->valuedouble;
        return true;
    }
    if (cJSON_IsString(v) && v->valuestring && v->valuestring[0] &&
        !isspace((unsigned char)v->valuestring[0])) {
        char *end = NULL;
        double d = strtod(v->valuestring, &end);
        if (end && *end == '\0' && isfinite(d)) {
            *out = d;
            return true;
        }
    }
    return false;
}

static bool add_number(cJSON *obj, const char *key, const cJSON *v)
{
    double d;
    if (!v)
        return true;
    if (number_of(v, &d))
        return cJSON_AddNumberToObject(obj, key, d) != NULL;
    cJSON *copy = cJSON_Duplicate(v, true);
    return copy && cJSON_AddItemToObject(obj, key, copy);
}

/* ---- the translation context ----------------------------------------------------------------- */

typedef struct {
    const pe_events_segment_in_t *in;
    const cJSON *batch_context; /* the envelope's context (object or NULL) */
    const char *batch_sent_at;  /* the envelope's sentAt text, or NULL */
    bool wants_store_currency;  /* a commerce event needed in->store_currency, and it was NULL */
} mapper_t;

/* A currency code, upper-cased ("usd" → "USD"); else the store's, else nothing (noted in m). */
static bool add_currency(mapper_t *m, cJSON *obj, const cJSON *v)
{
    if (cJSON_IsString(v) && v->valuestring && strlen(v->valuestring) == 3) {
        char code[4];
        for (int i = 0; i < 3; i++)
            code[i] = (char)toupper((unsigned char)v->valuestring[i]);
        code[3] = '\0';
        return cJSON_AddStringToObject(obj, "currency", code) != NULL;
    }
    if (v) {
        cJSON *copy = cJSON_Duplicate(v, true);
        return copy && cJSON_AddItemToObject(obj, "currency", copy);
    }
    const char *store = m->in->store_currency;
    if (!store || !store[0]) {
        m->wants_store_currency = true;
        return true;
    }
    return cJSON_AddStringToObject(obj, "currency", store) != NULL;
}

/* The Segment properties of one message and which of them a mapping consumed. */
typedef struct {
    const cJSON *in;
    const char *used[MAX_USED];
    size_t nused;
} props_t;

static const cJSON *take(props_t *p, const char *key)
{
    const cJSON *v = get(p->in, key);
    if (v && p->nused < MAX_USED)
        p->used[p->nused++] = v->string;
    return v;
}

/* The first of keys present (each consumed only when it is the one used). */
static const cJSON *take_first(props_t *p, const char *const *keys)
{
    for (; *keys; keys++) {
        const cJSON *v = get(p->in, *keys);
        if (v && !cJSON_IsNull(v))
            return take(p, *keys);
    }
    return NULL;
}

static bool used(const props_t *p, const char *key)
{
    for (size_t i = 0; i < p->nused; i++)
        if (strcmp(p->used[i], key) == 0)
            return true;
    return false;
}

static const char *const PRODUCT_ID_KEYS[] = {"product_id", "productId", "id", "sku", NULL};

/* ---- custom: what the native definition has no field for ------------------------------------- */

/* Keys (all levels) and nesting depth of v, as the validator counts them inside `custom`. */
static void measure(const cJSON *v, int depth, size_t *keys, int *max_depth)
{
    if (depth > *max_depth)
        *max_depth = depth;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (cJSON_IsObject(v))
            (*keys)++;
        if (cJSON_IsObject(c) || cJSON_IsArray(c))
            measure(c, depth + 1, keys, max_depth);
    }
}

/* Adds v under key to custom (created on demand) when custom stays within its bounds. A
 * number that is not finite is kept, so that the event is rejected for it by the events
 * validator (out_of_range, naming custom.<key>) like every other such number, never dropped
 * without a word. */
static bool add_custom(cJSON *event, const char *key, const cJSON *v)
{
    if (!v || !key[0] || cJSON_IsNull(v))
        return true;
    cJSON *custom = cJSON_GetObjectItemCaseSensitive(event, "custom");
    size_t keys = 1;
    int depth = 1;
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        measure(v, 2, &keys, &depth);
    if (depth > PE_EVENT_CUSTOM_MAX_DEPTH)
        return true;
    if (custom) {
        size_t have = 0;
        int d = 1;
        measure(custom, 1, &have, &d);
        if (have + keys > PE_EVENT_CUSTOM_MAX_KEYS || cJSON_GetObjectItemCaseSensitive(custom, key))
            return true;
    } else if (keys > PE_EVENT_CUSTOM_MAX_KEYS) {
        return true;
    }
    cJSON *copy = cJSON_Duplicate(v, true);
    if (!copy)
        return false;
    if (!custom && !(custom = cJSON_AddObjectToObject(event, "custom"))) {
        cJSON_Delete(copy);
        return false;
    }
    cJSON_AddItemToObject(custom, key, copy);
    char *text = cJSON_PrintUnformatted(custom);
    if (!text)
        return false;
    size_t size = strlen(text);
    free(text);
    if (size > PE_EVENT_CUSTOM_MAX_BYTES) {
        cJSON_DeleteItemFromObjectCaseSensitive(custom, key);
        if (!custom->child)
            cJSON_DeleteItemFromObjectCaseSensitive(event, "custom");
    }
    return true;
}

/* The Segment properties no mapping consumed, into custom as far as it allows. */
static bool add_leftovers(cJSON *event, const props_t *p)
{
    if (!cJSON_IsObject(p->in))
        return true;
    for (const cJSON *c = p->in->child; c; c = c->next) {
        if (!c->string || used(p, c->string) || strcmp(c->string, "sessionId") == 0 ||
            strcmp(c->string, "session_id") == 0)
            continue;
        if (!add_custom(event, c->string, c))
            return false;
    }
    return true;
}

/* ---- commerce properties --------------------------------------------------------------------- */

/* One Segment product (of products[]) as a native line item. */
static cJSON *map_item(const cJSON *product)
{
    if (!cJSON_IsObject(product))
        return cJSON_Duplicate(product, true);
    props_t p = {.in = product};
    cJSON *item = cJSON_CreateObject();
    const cJSON *qty = take(&p, "quantity");
    bool ok = item && add_id(item, "productId", take_first(&p, PRODUCT_ID_KEYS));
    ok = ok && (qty ? add_number(item, "quantity", qty)
                    : cJSON_AddNumberToObject(item, "quantity", 1) != NULL);
    ok = ok && add_number(item, "price", take(&p, "price"));
    ok = ok && add_id(item, "variantId", take(&p, "variant"));
    ok = ok && add_label(item, "name", take(&p, "name"), LABEL_MAX);
    ok = ok && add_label(item, "category", take(&p, "category"), LABEL_MAX);
    if (!ok) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

/* Units and value of products[]; value only when every product has a price. */
static void products_totals(const cJSON *products, double *units, double *value, bool *priced)
{
    *units = 0;
    *value = 0;
    *priced = cJSON_IsArray(products) && products->child;
    const cJSON *pr;
    cJSON_ArrayForEach(pr, products)
    {
        double q = 1, price = 0;
        const cJSON *qv = get(pr, "quantity");
        if (qv && !number_of(qv, &q))
            q = 1;
        *units += q;
        if (number_of(get(pr, "price"), &price))
            *value += q * price;
        else
            *priced = false;
    }
}

static bool map_product(mapper_t *m, props_t *p, cJSON *props, bool added)
{
    bool ok = add_id(props, "productId", take_first(p, PRODUCT_ID_KEYS));
    ok = ok && add_id(props, "variantId", take(p, "variant"));
    if (added) {
        const cJSON *qty = take(p, "quantity");
        ok = ok && (qty ? add_number(props, "quantity", qty)
                        : cJSON_AddNumberToObject(props, "quantity", 1) != NULL);
    }
    ok = ok && add_label(props, "name", take(p, "name"), LABEL_MAX);
    ok = ok && add_label(props, "category", take(p, "category"), LABEL_MAX);
    const cJSON *price = take(p, "price");
    ok = ok && add_number(props, "price", price);
    const cJSON *currency = take(p, "currency");
    /* product views need a currency only alongside a price */
    if (ok && (added || currency || price))
        ok = add_currency(m, props, currency);
    return ok;
}

/* Cart Viewed and Checkout Started: the cart's value and size. */
static bool map_cart(mapper_t *m, props_t *p, cJSON *props, bool checkout)
{
    static const char *const VALUE_KEYS[] = {"value", "revenue", "total", NULL};
    const cJSON *products = take(p, "products");
    const cJSON *value = take_first(p, VALUE_KEYS);
    double units, sum;
    bool priced;
    products_totals(products, &units, &sum, &priced);
    bool ok = true;
    if (value)
        ok = add_number(props, "cartValue", value);
    else if (priced)
        ok = cJSON_AddNumberToObject(props, "cartValue", round(sum * 100) / 100) != NULL;
    if (ok && cJSON_IsArray(products) && units >= 0 && units <= 10000 && units == floor(units))
        ok = cJSON_AddNumberToObject(props, "itemCount", units) != NULL;
    const cJSON *currency = take(p, "currency");
    if (ok && (checkout || currency || cJSON_GetObjectItemCaseSensitive(props, "cartValue")))
        ok = add_currency(m, props, currency);
    return ok;
}

static bool map_order(mapper_t *m, props_t *p, cJSON *props)
{
    static const char *const ORDER_KEYS[] = {"order_id", "orderId", "checkout_id", NULL};
    static const char *const VALUE_KEYS[] = {"revenue", "total", "subtotal", "value", NULL};
    bool ok = add_id(props, "orderId", take_first(p, ORDER_KEYS));
    const cJSON *value = take_first(p, VALUE_KEYS);
    const cJSON *products = take(p, "products");
    if (ok && value) {
        ok = add_number(props, "value", value);
    } else if (ok) {
        double units, sum;
        bool priced;
        products_totals(products, &units, &sum, &priced);
        if (priced)
            ok = cJSON_AddNumberToObject(props, "value", round(sum * 100) / 100) != NULL;
    }
    ok = ok && add_currency(m, props, take(p, "currency"));
    if (ok && products) {
        if (!cJSON_IsArray(products))
            return add_id(props, "items", products);
        cJSON *items = cJSON_AddArrayToObject(props, "items");
        const cJSON *pr;
        size_t n = 0;
        cJSON_ArrayForEach(pr, products)
        {
            if (++n > PE_EVENT_MAX_ITEMS + 1)
                break; /* enough for the validator to say there are too many */
            cJSON *item = items ? map_item(pr) : NULL;
            if (!item)
                return false;
            cJSON_AddItemToArray(items, item);
        }
        ok = items != NULL;
    }
    ok = ok && add_number(props, "shipping", take(p, "shipping"));
    ok = ok && add_number(props, "tax", take(p, "tax"));
    const cJSON *discount = take(p, "discount");
    double d;
    if (ok && discount && number_of(discount, &d))
        ok = cJSON_AddNumberToObject(props, "discount", fabs(d)) != NULL; /* sign varies */
    else
        ok = ok && add_number(props, "discount", discount);
    ok = ok && add_id(props, "coupon", take(p, "coupon"));
    return ok;
}

/* ---- names ----------------------------------------------------------------------------------- */

typedef enum {
    SEG_PRODUCT_VIEWED,
    SEG_PRODUCT_ADDED,
    SEG_CART_VIEWED,
    SEG_CHECKOUT_STARTED,
    SEG_CHECKOUT_STEP, /* resolved to SEG_SHIPPING, SEG_PAYMENT_INFO or SEG_OTHER */
    SEG_SHIPPING,
    SEG_PAYMENT_INFO,
    SEG_ORDER_COMPLETED,
    SEG_OTHER,
} seg_track_t;

static const struct {
    const char *segment;
    seg_track_t kind;
} TRACK_NAMES[] = {
    {"Product Viewed", SEG_PRODUCT_VIEWED},
    {"Product Added", SEG_PRODUCT_ADDED},
    {"Cart Viewed", SEG_CART_VIEWED},
    {"Checkout Started", SEG_CHECKOUT_STARTED},
    {"Checkout Step Completed", SEG_CHECKOUT_STEP},
    {"Payment Info Entered", SEG_PAYMENT_INFO},
    {"Order Completed", SEG_ORDER_COMPLETED},
};

/* "Newsletter Signed-Up!" → "newsletter_signed_up"; "" when nothing usable is left. */
static void snake_case(const char *s, char out[NAME_PART_MAX + 1])
{
    size_t n = 0;
    bool gap = false;
    for (; *s && n < NAME_PART_MAX; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) && c < 0x80) {
            if (gap && n > 0 && n < NAME_PART_MAX)
                out[n++] = '_';
            if (n < NAME_PART_MAX)
                out[n++] = (char)tolower(c);
            gap = false;
        } else {
            gap = true;
        }
    }
    out[n] = '\0';
}

/* ---- context --------------------------------------------------------------------------------- */

/* A context field of the message, else of the batch envelope. */
static const cJSON *ctx_get(const mapper_t *m, const cJSON *msg_ctx, const char *key)
{
    const cJSON *v = get(msg_ctx, key);
    return v ? v : get(m->batch_context, key);
}

static const char *device_from_segment(const char *type)
{
    static const struct {
        const char *segment, *ours;
    } MAP[] = {{"mobile", "mobile"},   {"phone", "mobile"},    {"ios", "mobile"},
               {"android", "mobile"},  {"iphone", "mobile"},   {"tablet", "tablet"},
               {"ipad", "tablet"},     {"desktop", "desktop"}, {"web", "desktop"},
               {"browser", "desktop"}, {"macos", "desktop"},   {"windows", "desktop"},
               {"linux", "desktop"}};
    for (size_t i = 0; i < PE_ARRAY_LEN(MAP); i++)
        if (strcasecmp(type, MAP[i].segment) == 0)
            return MAP[i].ours;
    return "other";
}

static bool ua_has(const char *ua, const char *word)
{
    return strcasestr(ua, word) != NULL;
}

/* The storefront SDK's guess (web/sdk/pe.js), for clients that send no device type. */
static const char *device_from_user_agent(const char *ua)
{
    if (ua_has(ua, "iPad") || ua_has(ua, "Tablet") || ua_has(ua, "Kindle") ||
        ua_has(ua, "PlayBook") || ua_has(ua, "Silk") ||
        (ua_has(ua, "Android") && !ua_has(ua, "Mobile")))
        return "tablet";
    if (ua_has(ua, "Mobi") || ua_has(ua, "iPhone") || ua_has(ua, "iPod") || ua_has(ua, "Android") ||
        ua_has(ua, "BlackBerry") || ua_has(ua, "Opera Mini") || ua_has(ua, "IEMobile"))
        return "mobile";
    if (ua_has(ua, "bot") || ua_has(ua, "crawl") || ua_has(ua, "spider") || ua_has(ua, "headless"))
        return "other";
    return "desktop";
}

/* Path of an absolute or relative URL ("/" when it has none). */
static void path_of_url(const char *url, char *out, size_t outlen)
{
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        p = strchr(scheme + 3, '/');
        if (!p)
            p = "/";
    }
    size_t n = strcspn(p, "?#");
    if (n == 0) {
        p = "/";
        n = 1;
    }
    if (n >= outlen)
        n = utf8_cut(p, outlen - 1);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* utm_* parameters of the page URL's query, when the message has no campaign, read by the
 * server's own query-string rules (pe_query_parse): '+' is a space, the first value of a name
 * counts, and a query the server would refuse (a malformed escape, %00, invalid UTF-8 anywhere,
 * more than PE_QUERY_MAX_PARAMS parameters) gives no utm at all. False only on ENOMEM. */
static bool utm_from_url(cJSON *utm, const char *url)
{
    static const char *const KEYS[] = {"source", "medium", "campaign", "term", "content"};
    const char *q = strchr(url, '?');
    if (!q)
        return true;
    q++;
    pe_query_t query;
    int rc = pe_query_parse(q, strcspn(q, "#"), &query);
    bool ok = rc != PE_ENOMEM;
    for (size_t i = 0; rc == 0 && ok && i < PE_ARRAY_LEN(KEYS); i++) {
        char name[16];
        snprintf(name, sizeof name, "utm_%s", KEYS[i]);
        const char *value = pe_query_get(&query, name);
        if (value && value[0])
            ok = add_text(utm, KEYS[i], value, UTM_MAX);
    }
    pe_query_free(&query);
    return ok;
}

/* Builds context; page_props (a page call's properties) override context.page. */
static bool map_context(const mapper_t *m, const cJSON *msg, props_t *page_props, cJSON *event)
{
    const cJSON *msg_ctx = get(msg, "context");
    cJSON *ctx = cJSON_CreateObject();
    if (!ctx)
        return false;
    bool ok = true;

    /* page */
    const cJSON *seg_page = ctx_get(m, msg_ctx, "page");
    static const struct {
        const char *key;
        size_t max;
    } PAGE[] = {{"url", PAGE_URL_MAX},
                {"path", PAGE_PATH_MAX},
                {"referrer", PAGE_URL_MAX},
                {"title", PAGE_TITLE_MAX}};
    cJSON *page = cJSON_CreateObject();
    ok = page != NULL;
    for (size_t i = 0; ok && i < PE_ARRAY_LEN(PAGE); i++) {
        const cJSON *v = page_props ? take(page_props, PAGE[i].key) : NULL;
        if (!cJSON_IsString(v))
            v = get(seg_page, PAGE[i].key);
        if (v && cJSON_IsString(v) && v->valuestring)
            ok = add_text(page, PAGE[i].key, v->valuestring, PAGE[i].max);
    }
    const char *url = get_str(page, "url");
    if (ok && url && !get(page, "path")) {
        char path[PAGE_PATH_MAX + 1];
        path_of_url(url, path, sizeof path);
        ok = cJSON_AddStringToObject(page, "path", path) != NULL;
    }
    if (ok && page->child)
        cJSON_AddItemToObject(ctx, "page", page);
    else
        cJSON_Delete(page);

    /* utm */
    cJSON *utm = ok ? cJSON_CreateObject() : NULL;
    ok = ok && utm;
    const cJSON *campaign = ctx_get(m, msg_ctx, "campaign");
    if (ok && cJSON_IsObject(campaign)) {
        static const char *const FROM[] = {"name", "source", "medium", "term", "content"};
        static const char *const TO[] = {"campaign", "source", "medium", "term", "content"};
        for (size_t i = 0; ok && i < PE_ARRAY_LEN(FROM); i++) {
            const char *v = get_str(campaign, FROM[i]);
            if (v)
                ok = add_text(utm, TO[i], v, UTM_MAX);
        }
    } else if (ok && url) {
        ok = utm_from_url(utm, url);
    }
    if (ok && utm->child)
        cJSON_AddItemToObject(ctx, "utm", utm);
    else
        cJSON_Delete(utm);

    /* device, user agent, locale */
    const cJSON *uav = ctx_get(m, msg_ctx, "userAgent");
    const char *ua = cJSON_IsString(uav) && uav->valuestring[0] ? uav->valuestring : NULL;
    const char *device = get_str(ctx_get(m, msg_ctx, "device"), "type");
    const char *type = device ? device_from_segment(device)
                       : ua   ? device_from_user_agent(ua)
                              : NULL;
    cJSON *dev = NULL;
    if (ok && type) {
        dev = cJSON_AddObjectToObject(ctx, "device");
        ok = dev && cJSON_AddStringToObject(dev, "type", type);
    }
    if (ok && ua)
        ok = add_text(ctx, "userAgent", ua, UA_MAX);
    const cJSON *locv = ctx_get(m, msg_ctx, "locale");
    const char *locale = cJSON_IsString(locv) && locv->valuestring[0] ? locv->valuestring : NULL;
    if (ok && locale)
        ok = add_text(ctx, "locale", locale, LOCALE_MAX);

    if (ok && ctx->child) {
        cJSON_AddItemToObject(event, "context", ctx);
        return true;
    }
    cJSON_Delete(ctx);
    return ok;
}

/* ---- common fields --------------------------------------------------------------------------- */

static void uuid_format(const unsigned char b[16], char out[PE_EVENT_UUID_LEN + 1])
{
    static const char HEX[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = HEX[b[i] >> 4];
        out[n++] = HEX[b[i] & 0xF];
    }
    out[n] = '\0';
}

/* The eventId of message index (invariant 2). */
static void event_id_of(const mapper_t *m, const cJSON *msg, size_t index,
                        char out[PE_EVENT_UUID_LEN + 1])
{
    const cJSON *mid = get(msg, "messageId");
    char num[32];
    const char *text = NULL;
    if (cJSON_IsString(mid) && mid->valuestring && mid->valuestring[0]) {
        text = mid->valuestring;
    } else if (cJSON_IsNumber(mid) && isfinite(mid->valuedouble)) {
        snprintf(num, sizeof num, "%.17g", mid->valuedouble);
        text = num;
    }
    unsigned char b[crypto_hash_sha256_BYTES];
    if (text && pe_uuid_text_valid(text)) {
        for (size_t i = 0; i <= PE_EVENT_UUID_LEN; i++)
            out[i] = (char)tolower((unsigned char)text[i]);
        return;
    }
    if (text) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const unsigned char *)"segment", 8); /* with its NUL */
        crypto_hash_sha256_update(&st, (const unsigned char *)m->in->store_id,
                                  strlen(m->in->store_id) + 1);
        crypto_hash_sha256_update(&st, (const unsigned char *)text, strlen(text));
        crypto_hash_sha256_final(&st, b);
        b[6] = (unsigned char)((b[6] & 0x0F) | 0x50); /* version 5 layout (name-based) */
    } else {
        /* Random, yet pure: the caller's fresh seed, told apart per message by its index. */
        unsigned char at[8];
        for (size_t i = 0; i < sizeof at; i++)
            at[i] = (unsigned char)((uint64_t)index >> (56 - 8 * i));
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const unsigned char *)"segment-random", 15);
        crypto_hash_sha256_update(&st, m->in->seed, sizeof m->in->seed);
        crypto_hash_sha256_update(&st, at, sizeof at);
        crypto_hash_sha256_final(&st, b);
        b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 (random) */
    }
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 9562 variant */
    uuid_format(b, out);
}

/* eventId, timestamp, sentAt, anonymousId, userId, sessionId. */
static bool map_common(const mapper_t *m, const cJSON *msg, size_t index, const props_t *props,
                       cJSON *event)
{
    char id[PE_EVENT_UUID_LEN + 1];
    event_id_of(m, msg, index, id);
    bool ok = cJSON_AddStringToObject(event, "eventId", id) != NULL;

    const cJSON *ts = get(msg, "originalTimestamp");
    if (!ts || cJSON_IsNull(ts))
        ts = get(msg, "timestamp");
    if (!ts || cJSON_IsNull(ts))
        ts = get(msg, "sentAt");
    if (ok && ts && !cJSON_IsNull(ts)) {
        cJSON *copy = cJSON_Duplicate(ts, false);
        ok = copy && cJSON_AddItemToObject(event, "timestamp", copy);
    } else if (ok) {
        char now[40];
        if (m->batch_sent_at)
            snprintf(now, sizeof now, "%s", m->batch_sent_at);
        else
            pe_time_format_rfc3339(m->in->received_at_us, now, sizeof now);
        ok = cJSON_AddStringToObject(event, "timestamp", now) != NULL;
    }
    const cJSON *sent = get(msg, "sentAt");
    if (ok && sent && !cJSON_IsNull(sent)) {
        cJSON *copy = cJSON_Duplicate(sent, false);
        ok = copy && cJSON_AddItemToObject(event, "sentAt", copy);
    }

    const cJSON *anon = get(msg, "anonymousId");
    const cJSON *user = get(msg, "userId");
    if (cJSON_IsNull(anon) || (cJSON_IsString(anon) && !anon->valuestring[0]))
        anon = NULL;
    if (cJSON_IsNull(user) || (cJSON_IsString(user) && !user->valuestring[0]))
        user = NULL;
    ok = ok && add_id(event, "anonymousId", anon ? anon : user);
    ok = ok && add_id(event, "userId", user);

    const cJSON *session = get(get(msg, "context"), "sessionId");
    if (!session)
        session = get(props->in, "sessionId");
    if (!session)
        session = get(props->in, "session_id");
    if (ok && session)
        ok = add_id(event, "sessionId", session);
    else if (ok) {
        const cJSON *visitor = cJSON_GetObjectItemCaseSensitive(event, "anonymousId");
        ok = !visitor || add_id(event, "sessionId", visitor);
    }
    return ok;
}

/* ---- one message ----------------------------------------------------------------------------- */

static bool add_props_as_sent(cJSON *event, const cJSON *props)
{
    cJSON *copy = props ? cJSON_Duplicate(props, true) : cJSON_CreateObject();
    return copy && cJSON_AddItemToObject(event, "properties", copy);
}

/* The native event for message index of the given type (NULL: the message's own "type").
 * Returns a new object, a copy of the message itself when it cannot be translated (invariant 1), or
 * NULL on ENOMEM. */
static cJSON *map_message(mapper_t *m, const cJSON *msg, size_t index, const char *type)
{
    if (!cJSON_IsObject(msg))
        return cJSON_Duplicate(msg, true);
    if (!type)
        type = get_str(msg, "type");
    if (!type)
        return cJSON_Duplicate(msg, true);

    cJSON *event = cJSON_CreateObject();
    cJSON *props = cJSON_CreateObject();
    props_t in = {.in = get(msg, "properties")};
    const char *name = NULL;
    char custom_name[sizeof "custom.segment." + NAME_PART_MAX];
    bool ok = event && props, page_call = false, keep_rest = true, as_sent = false;
    const char *event_name = NULL;

    if (!ok) {
        /* fall through to out */
    } else if (strcmp(type, "page") == 0) {
        name = "storefront.page.viewed";
        page_call = true;
        /* the page's name and category have no native field: custom */
        ok = add_custom(event, "name", get(msg, "name"));
        ok = ok && add_custom(event, "category", get(msg, "category"));
    } else if (strcmp(type, "track") == 0) {
        event_name = get_str(msg, "event");
        seg_track_t kind = SEG_OTHER;
        for (size_t i = 0; event_name && i < PE_ARRAY_LEN(TRACK_NAMES); i++)
            if (strcasecmp(event_name, TRACK_NAMES[i].segment) == 0)
                kind = TRACK_NAMES[i].kind;
        if (kind == SEG_CHECKOUT_STEP) {
            double step = 0;
            if (get(in.in, "payment_method"))
                kind = SEG_PAYMENT_INFO;
            else if (get(in.in, "shipping_method") ||
                     (number_of(get(in.in, "step"), &step) && step == 1))
                kind = SEG_SHIPPING;
            else
                kind = SEG_OTHER;
        }
        switch (kind) {
        case SEG_PRODUCT_VIEWED:
            name = "storefront.product.viewed";
            ok = map_product(m, &in, props, false);
            break;
        case SEG_PRODUCT_ADDED:
            name = "storefront.cart.item_added";
            ok = map_product(m, &in, props, true);
            break;
        case SEG_CART_VIEWED:
            name = "storefront.cart.viewed";
            ok = map_cart(m, &in, props, false);
            break;
        case SEG_CHECKOUT_STARTED:
            name = "checkout.session.started";
            ok = map_cart(m, &in, props, true);
            break;
        case SEG_SHIPPING:
            name = "checkout.shipping.submitted";
            ok = add_id(props, "shippingMethod", take(&in, "shipping_method"));
            take(&in, "step");
            break;
        case SEG_PAYMENT_INFO:
            name = "checkout.payment.submitted";
            ok = add_id(props, "paymentMethod", take(&in, "payment_method"));
            take(&in, "step");
            break;
        case SEG_ORDER_COMPLETED:
            name = "checkout.order.completed";
            ok = map_order(m, &in, props);
            break;
        case SEG_CHECKOUT_STEP:
        case SEG_OTHER:
            if (event_name) {
                char part[NAME_PART_MAX + 1];
                snake_case(event_name, part);
                snprintf(custom_name, sizeof custom_name, "custom.segment.%s",
                         part[0] ? part : "unnamed");
                name = custom_name;
                as_sent = true;
                ok = add_custom(event, "event", get(msg, "event"));
            }
            break;
        }
    } else if (strcmp(type, "identify") == 0) {
        name = "custom.segment.identify";
        keep_rest = false; /* traits: see the header */
    } else if (strcmp(type, "screen") == 0) {
        name = "custom.segment.screen";
        as_sent = true;
        ok = add_custom(event, "name", get(msg, "name"));
    } else if (strcmp(type, "group") == 0) {
        name = "custom.segment.group";
        keep_rest = false;
        ok = add_id(props, "groupId", get(msg, "groupId"));
    } else if (strcmp(type, "alias") == 0) {
        name = "custom.segment.alias";
        keep_rest = false;
        ok = add_id(props, "previousId", get(msg, "previousId"));
    }
    if (ok && !name) {
        /* unknown type, or a track without an event name: hand it over as sent */
        cJSON_Delete(event);
        cJSON_Delete(props);
        return cJSON_Duplicate(msg, true);
    }

    ok = ok && cJSON_AddStringToObject(event, "name", name);
    ok = ok && map_common(m, msg, index, &in, event);
    ok = ok && map_context(m, msg, page_call ? &in : NULL, event);
    if (ok && as_sent) {
        ok = add_props_as_sent(event, in.in);
        cJSON_Delete(props);
        props = NULL;
    } else if (ok) {
        cJSON_AddItemToObject(event, "properties", props);
        props = NULL;
        if (keep_rest)
            ok = add_leftovers(event, &in);
    }
    cJSON_Delete(props);
    if (!ok) {
        cJSON_Delete(event);
        return NULL;
    }
    return event;
}

/* ---- the envelope ---------------------------------------------------------------------------- */

int pe_events_segment_check_body(const cJSON *body, const char *type, pe_refusal_t *err)
{
    if (cJSON_IsObject(body))
        return 0;
    return pe_refuse(err, PE_EINVAL, "invalid_request", "the body must be a JSON object%s",
                     type ? " (one Segment message)" : " {\"batch\":[…]}");
}

/* Serialised size of msg when it is at most max bytes, else a value > max. */
static size_t message_size(const cJSON *msg, char *scratch, size_t scratch_len)
{
    if (!cJSON_PrintPreallocated((cJSON *)msg, scratch, (int)scratch_len, false))
        return scratch_len;
    return strlen(scratch);
}

/* The refusals of a {"batch":[…]} envelope, in the order of the header's table; fills m's batch
 * fields and *sent_at_us. */
static int check_batch(const cJSON *body, mapper_t *m, int64_t *sent_at_us, pe_refusal_t *err)
{
    const cJSON *messages = get(body, "batch");
    if (!cJSON_IsArray(messages))
        return pe_refuse(err, PE_EINVAL, "invalid_request",
                         "send {\"batch\":[…]} with at most %d Segment messages",
                         PE_EVENT_BATCH_MAX_EVENTS);
    int count = cJSON_GetArraySize(messages);
    if (count > PE_EVENT_BATCH_MAX_EVENTS)
        return pe_refuse(err, PE_ETOOBIG, "payload_too_large", "%d messages; at most %d per batch",
                         count, PE_EVENT_BATCH_MAX_EVENTS);
    const cJSON *sent = get(body, "sentAt");
    if (sent && !cJSON_IsNull(sent)) {
        if (!cJSON_IsString(sent) || pe_time_parse_rfc3339(sent->valuestring, sent_at_us) != 0)
            return pe_refuse(err, PE_EINVAL, "invalid_request",
                             "sentAt: must be an RFC 3339 timestamp");
        m->batch_sent_at = sent->valuestring;
    }
    const cJSON *context = get(body, "context");
    m->batch_context = cJSON_IsObject(context) ? context : NULL;

    size_t scratch_len = (size_t)PE_EVENTS_SEGMENT_MAX_MESSAGE + 8; /* cJSON wants some slack */
    char *scratch = malloc(scratch_len);
    if (!scratch)
        return PE_ENOMEM;
    int rc = 0, index = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, messages)
    {
        if (message_size(msg, scratch, scratch_len) > (size_t)PE_EVENTS_SEGMENT_MAX_MESSAGE) {
            rc = pe_refuse(err, PE_ETOOBIG, "payload_too_large",
                           "batch[%d]: a message may have at most %d bytes", index,
                           PE_EVENTS_SEGMENT_MAX_MESSAGE);
            break;
        }
        index++;
    }
    free(scratch);
    return rc;
}

int pe_events_segment_map(const cJSON *body, const char *type, const pe_events_segment_in_t *in,
                          pe_events_segment_out_t *out, pe_refusal_t *err)
{
    mapper_t m = {.in = in};
    cJSON *events = NULL;
    int64_t sent_at_us = 0;
    memset(out, 0, sizeof *out);
    int rc = pe_events_segment_check_body(body, type, err);
    if (rc != 0)
        goto out;
    if (!type && (rc = check_batch(body, &m, &sent_at_us, err)) != 0)
        goto out;

    rc = PE_ENOMEM;
    events = cJSON_CreateArray();
    if (!events)
        goto out;
    if (type) {
        cJSON *ev = map_message(&m, body, 0, type);
        if (!ev)
            goto out;
        cJSON_AddItemToArray(events, ev);
    } else {
        size_t index = 0;
        const cJSON *msg;
        cJSON_ArrayForEach(msg, get(body, "batch"))
        {
            cJSON *ev = map_message(&m, msg, index++, NULL);
            if (!ev)
                goto out;
            cJSON_AddItemToArray(events, ev);
        }
    }
    out->events = events;
    events = NULL;
    out->batch_sent_at_us = sent_at_us;
    out->wants_store_currency = m.wants_store_currency;
    rc = 0;
out:
    cJSON_Delete(events);
    return rc;
}
