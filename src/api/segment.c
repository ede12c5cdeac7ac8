/*
 * segment.c — Segment HTTP Tracking API compatibility: POST /v1/batch, /v1/track, /v1/page and
 * /v1/identify take Segment messages, translate each into a native event (include/pe/events.h)
 * and hand the batch to the collector exactly as POST /v1/events does (pe_api_ingest_for), so
 * validation, clock-skew correction, idempotency, the dead letter and the 200-after-COMMIT
 * promise are the collector's, unchanged.
 *
 *   request                                        answer
 *   malformed JSON, not an object, "batch" not     400 {"error":{…}}
 *   an array, a bad sentAt
 *   no key, an unknown or revoked key              401
 *   a secret key                                   403
 *   a message over 32 KB, a batch over 500 KB or   413
 *   500 messages
 *   stored (after COMMIT)                          200 {"success":true,"accepted":N,"rejected":[…]}
 *   PostgreSQL down, the queue full                503 + Retry-After (nothing stored; retry)
 *
 * The write key is a publishable key (pk_…): the Basic-auth user (what Segment's libraries send)
 * or "writeKey" in the body (older libraries). The routes are PE_AUTH_NONE and the handler
 * authenticates after parsing the body, since the key may be inside it.
 *
 * Mapping of the common fields (Segment spec → native event):
 *   messageId          eventId: itself when it is a UUID, else a name-based UUID (version 5
 *                      layout, SHA-256 of "segment" + storeId + messageId), so a retried message
 *                      keeps its eventId and is stored once; no messageId → a random UUID
 *   originalTimestamp  timestamp (else timestamp, else sentAt, else the receive time)
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
 *
 *   products[] → items[]: product_id (else productId, id, sku) → productId, variant →
 *   variantId, quantity (default 1), price, name, category. Numeric strings are read as
 *   numbers, numeric ids as text, currencies upper-cased; a commerce event without a currency
 *   gets the store's. What the native definition has no field for (brand, sku, url, coupon of a
 *   product, affiliation, …) goes to `custom`, as far as custom's bounds allow.
 *
 * Invariants:
 *  1. Message i of the request is element i of the collector's batch, so the answer's
 *     rejected[].index points into the batch as sent. A message that cannot be translated (not
 *     an object, an unknown type, a track without an event name) is handed over as sent: the
 *     validator refuses it and the dead letter keeps it verbatim. Nothing is dropped unseen.
 *  2. The translation is a pure function of (store, message, batch envelope, store currency):
 *     a retried batch produces the same events with the same eventIds, and is stored once.
 *  3. The request is answered exactly once: here for refusals before ingestion, otherwise by
 *     the collector's done callback (pe_api_ingest_for in events.c).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "pe/api.h"
#include "pe/collector.h"
#include "pe/events.h"
#include "pe/tenancy.h"
#include "routes.h"

/* Bounds of the native fields the translation fills (include/pe/events.h, src/events/defs.c); free
 * text is cut to fit, ids never are (a cut id would be another id). */
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

/* A currency code, upper-cased ("usd" → "USD"); else fallback (the store's), else nothing. */
static bool add_currency(cJSON *obj, const cJSON *v, const char *fallback)
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
    return !fallback || cJSON_AddStringToObject(obj, "currency", fallback) != NULL;
}

/* ---- the translation context ----------------------------------------------------------------- */

typedef struct {
    pe_app_t *app;
    const char *store_id;
    const cJSON *batch_context; /* the envelope's context (object or NULL) */
    const char *batch_sent_at;  /* the envelope's sentAt text, or NULL */
    int64_t received_at_us;
    /* the store's currency, read once when a commerce event lacks one */
    bool currency_read;
    char currency[4];
} mapper_t;

static const char *store_currency(mapper_t *m)
{
    if (!m->currency_read) {
        m->currency_read = true;
        pe_store_t store;
        if (pe_tenancy_store_get(m->app->db, m->store_id, &store) == 0)
            snprintf(m->currency, sizeof m->currency, "%s", store.currency);
    }
    return m->currency[0] ? m->currency : NULL;
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
        ok = add_currency(props, currency, store_currency(m));
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
        ok = add_currency(props, currency, store_currency(m));
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
    ok = ok && add_currency(props, take(p, "currency"), store_currency(m));
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

/* utm_* parameters of the page URL's query, when the message has no campaign. */
static bool utm_from_url(cJSON *utm, const char *url)
{
    const char *q = strchr(url, '?');
    if (!q)
        return true;
    size_t len = strcspn(q + 1, "#");
    pe_http_query_t query;
    bool ok = true;
    if (pe_http_query_parse(q + 1, len, &query) == 0) {
        static const char *const KEYS[] = {"source", "medium", "campaign", "term", "content"};
        for (size_t i = 0; ok && i < PE_ARRAY_LEN(KEYS); i++) {
            char name[16];
            snprintf(name, sizeof name, "utm_%s", KEYS[i]);
            const char *v = pe_http_query_get(&query, name);
            if (v && *v)
                ok = add_text(utm, KEYS[i], v, UTM_MAX);
        }
    }
    pe_http_query_free(&query);
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

static bool is_uuid(const char *s)
{
    for (size_t i = 0; i < PE_EVENT_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return s[PE_EVENT_UUID_LEN] == '\0';
}

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

/* The eventId of a message (invariant 2). */
static void event_id_of(const mapper_t *m, const cJSON *msg, char out[PE_EVENT_UUID_LEN + 1])
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
    if (text && is_uuid(text)) {
        for (size_t i = 0; i <= PE_EVENT_UUID_LEN; i++)
            out[i] = (char)tolower((unsigned char)text[i]);
        return;
    }
    if (text) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const unsigned char *)"segment", 8); /* with its NUL */
        crypto_hash_sha256_update(&st, (const unsigned char *)m->store_id, strlen(m->store_id) + 1);
        crypto_hash_sha256_update(&st, (const unsigned char *)text, strlen(text));
        crypto_hash_sha256_final(&st, b);
        b[6] = (unsigned char)((b[6] & 0x0F) | 0x50); /* version 5 layout (name-based) */
    } else {
        randombytes_buf(b, 16);
        b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 (random) */
    }
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 9562 variant */
    uuid_format(b, out);
}

/* eventId, timestamp, sentAt, anonymousId, userId, sessionId. */
static bool map_common(const mapper_t *m, const cJSON *msg, const props_t *props, cJSON *event)
{
    char id[PE_EVENT_UUID_LEN + 1];
    event_id_of(m, msg, id);
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
            pe_time_format_rfc3339(m->received_at_us, now, sizeof now);
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

/* The native event for a Segment message of the given type (NULL: the message's own "type").
 * Returns a new object, a copy of the message itself when it cannot be translated (invariant 1), or
 * NULL on ENOMEM. */
static cJSON *map_message(mapper_t *m, const cJSON *msg, const char *type)
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
    ok = ok && map_common(m, msg, &in, event);
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

/* ---- the handlers ---------------------------------------------------------------------------- */

/* Serialised size of msg when it is at most max bytes, else a value > max. */
static size_t message_size(const cJSON *msg, char *scratch, size_t scratch_len)
{
    if (!cJSON_PrintPreallocated((cJSON *)msg, scratch, (int)scratch_len, false))
        return scratch_len;
    return strlen(scratch);
}

/* type NULL: /v1/batch; else the one message type of /v1/<type>. */
static int segment_post(pe_http_request_t *req, const char *type)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *events = NULL;
    char *scratch = NULL;
    size_t scratch_len = (size_t)PE_SEGMENT_MAX_MESSAGE + 8; /* cJSON wants a little slack */
    int rc = 0;
    cJSON *body = pe_http_json_body(req);
    if (!body)
        goto out; /* answered 400 */
    if (!cJSON_IsObject(body)) {
        pe_http_reply_error(req, 400, "invalid_request", "the body must be a JSON object%s",
                            type ? " (one Segment message)" : " {\"batch\":[…]}");
        goto out;
    }
    const cJSON *write_key = get(body, "writeKey");
    pe_http_auth_t auth;
    if (pe_api_authenticate_write_key(
            req, cJSON_IsString(write_key) ? write_key->valuestring : NULL, &auth) != 0)
        goto out; /* answered 401 / 403 / 503 */

    mapper_t m = {.app = app, .store_id = auth.store_id, .received_at_us = pe_now_unix_us()};
    const cJSON *messages = body;
    int64_t batch_sent_at_us = 0;
    if (!type) {
        messages = get(body, "batch");
        if (!cJSON_IsArray(messages)) {
            pe_http_reply_error(req, 400, "invalid_request",
                                "send {\"batch\":[…]} with at most %d Segment messages",
                                PE_COLLECTOR_MAX_EVENTS);
            goto out;
        }
        int count = cJSON_GetArraySize(messages);
        if (count > PE_COLLECTOR_MAX_EVENTS) {
            pe_http_reply_error(req, 413, "payload_too_large", "%d messages; at most %d per batch",
                                count, PE_COLLECTOR_MAX_EVENTS);
            goto out;
        }
        const cJSON *sent = get(body, "sentAt");
        if (sent && !cJSON_IsNull(sent)) {
            if (!cJSON_IsString(sent) ||
                pe_time_parse_rfc3339(sent->valuestring, &batch_sent_at_us) != 0) {
                pe_http_reply_error(req, 400, "invalid_request",
                                    "sentAt: must be an RFC 3339 timestamp");
                goto out;
            }
            m.batch_sent_at = sent->valuestring;
        }
        const cJSON *context = get(body, "context");
        m.batch_context = cJSON_IsObject(context) ? context : NULL;
        scratch = malloc(scratch_len);
        if (!scratch) {
            rc = PE_ENOMEM;
            goto out;
        }
        int index = 0;
        const cJSON *msg;
        cJSON_ArrayForEach(msg, messages)
        {
            if (message_size(msg, scratch, scratch_len) > (size_t)PE_SEGMENT_MAX_MESSAGE) {
                pe_http_reply_error(req, 413, "payload_too_large",
                                    "batch[%d]: a message may have at most %d bytes", index,
                                    PE_SEGMENT_MAX_MESSAGE);
                goto out;
            }
            index++;
        }
    }

    events = cJSON_CreateArray();
    if (!events) {
        rc = PE_ENOMEM;
        goto out;
    }
    if (type) {
        cJSON *ev = map_message(&m, messages, type);
        if (!ev) {
            rc = PE_ENOMEM;
            goto out;
        }
        cJSON_AddItemToArray(events, ev);
    } else {
        const cJSON *msg;
        cJSON_ArrayForEach(msg, messages)
        {
            cJSON *ev = map_message(&m, msg, NULL);
            if (!ev) {
                rc = PE_ENOMEM;
                goto out;
            }
            cJSON_AddItemToArray(events, ev);
        }
    }
    /* Answers now or from the collector's done callback; req is not ours after this call. */
    rc = pe_api_ingest_for(req, auth.store_id, PE_COLLECTOR_LIVE, events, batch_sent_at_us,
                           PE_API_REPLY_SEGMENT);
out:
    cJSON_Delete(events);
    free(scratch);
    return rc;
}

int pe_api_segment_batch(pe_http_request_t *req)
{
    return segment_post(req, NULL);
}

int pe_api_segment_track(pe_http_request_t *req)
{
    return segment_post(req, "track");
}

int pe_api_segment_page(pe_http_request_t *req)
{
    return segment_post(req, "page");
}

int pe_api_segment_identify(pe_http_request_t *req)
{
    return segment_post(req, "identify");
}
