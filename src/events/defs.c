/*
 * defs.c — the definition table of the customer-journey events: every event type once, with
 * its funnel step and its properties (type, required or optional, bounds). The validator
 * (validate.c) and the JSON Schema export (schema.c) both read these tables and nothing else.
 *
 * Invariants:
 *  1. Names follow domain.entity.action and are unique; EVENTS keeps a stable order (the order
 *     of the exported oneOf and of pe_events_at).
 *  2. Every string has a max_len, every number and integer a [min, max], every PE_PROP_ITEMS
 *     array a [min, max] element count; property strings are never empty.
 *  3. Read-only data: everything here is thread-safe.
 */
#include <string.h>

#include "events_internal.h"

#define MONEY_MAX    1e9   /* prices, values, costs: 0..1e9 in the store's currency */
#define QUANTITY_MAX 10000 /* units of one line item; items in a cart */
#define ID_LEN       128   /* productId, variantId, orderId, methods, flag keys */
#define LABEL_LEN    256   /* product names, categories */

#define STR(n, req, len, d)                                                                        \
    {                                                                                              \
        (n), PE_PROP_STRING, (req), 0, 0, (len), (d)                                               \
    }
#define NUM(n, req, lo, hi, d)                                                                     \
    {                                                                                              \
        (n), PE_PROP_NUMBER, (req), (lo), (hi), 0, (d)                                             \
    }
#define INT(n, req, lo, hi, d)                                                                     \
    {                                                                                              \
        (n), PE_PROP_INTEGER, (req), (lo), (hi), 0, (d)                                            \
    }
#define CURRENCY(n, req, d)                                                                        \
    {                                                                                              \
        (n), PE_PROP_CURRENCY, (req), 0, 0, 3, (d)                                                 \
    }
#define COUNTRY(n, req, d)                                                                         \
    {                                                                                              \
        (n), PE_PROP_COUNTRY, (req), 0, 0, 2, (d)                                                  \
    }
#define ITEMS(n, req, lo, hi, d)                                                                   \
    {                                                                                              \
        (n), PE_PROP_ITEMS, (req), (lo), (hi), 0, (d)                                              \
    }

const pe_prop_def_t pe_events_item_props[] = {
    STR("productId", true, ID_LEN, "The product's id in the store's catalogue."),
    INT("quantity", true, 1, QUANTITY_MAX, "Units bought."),
    NUM("price", true, 0, MONEY_MAX, "Unit price."),
    STR("variantId", false, ID_LEN, "The variant's id."),
    STR("name", false, LABEL_LEN, "Product name."),
    STR("category", false, LABEL_LEN, "Product category."),
};
const size_t pe_events_item_nprops = PE_ARRAY_LEN(pe_events_item_props);

static const pe_prop_def_t PRODUCT_VIEWED[] = {
    STR("productId", true, ID_LEN, "The product's id in the store's catalogue."),
    STR("variantId", false, ID_LEN, "The variant's id."),
    STR("name", false, LABEL_LEN, "Product name."),
    STR("category", false, LABEL_LEN, "Product category."),
    NUM("price", false, 0, MONEY_MAX, "Unit price."),
    CURRENCY("currency", false, "ISO 4217 code of price."),
};

static const pe_prop_def_t CART_ITEM_ADDED[] = {
    STR("productId", true, ID_LEN, "The product's id in the store's catalogue."),
    INT("quantity", true, 1, QUANTITY_MAX, "Units added."),
    NUM("price", true, 0, MONEY_MAX, "Unit price."),
    CURRENCY("currency", true, "ISO 4217 code of price."),
    STR("variantId", false, ID_LEN, "The variant's id."),
    STR("name", false, LABEL_LEN, "Product name."),
    STR("category", false, LABEL_LEN, "Product category."),
};

static const pe_prop_def_t CART_VIEWED[] = {
    NUM("cartValue", false, 0, MONEY_MAX, "Value of the cart."),
    CURRENCY("currency", false, "ISO 4217 code of cartValue."),
    INT("itemCount", false, 0, QUANTITY_MAX, "Units in the cart."),
};

static const pe_prop_def_t CHECKOUT_STARTED[] = {
    NUM("cartValue", true, 0, MONEY_MAX, "Value of the cart at checkout."),
    CURRENCY("currency", true, "ISO 4217 code of cartValue."),
    INT("itemCount", false, 0, QUANTITY_MAX, "Units in the cart."),
};

static const pe_prop_def_t SHIPPING_SUBMITTED[] = {
    STR("shippingMethod", true, ID_LEN, "The shipping method chosen."),
    NUM("shippingCost", false, 0, MONEY_MAX, "Shipping cost."),
    CURRENCY("currency", false, "ISO 4217 code of shippingCost."),
    COUNTRY("country", false, "ISO 3166-1 alpha-2 destination country."),
};

static const pe_prop_def_t PAYMENT_SUBMITTED[] = {
    STR("paymentMethod", true, ID_LEN, "The payment method chosen."),
};

static const pe_prop_def_t ORDER_COMPLETED[] = {
    STR("orderId", true, ID_LEN, "The order's id in the store."),
    NUM("value", true, 0, MONEY_MAX, "Order total."),
    CURRENCY("currency", true, "ISO 4217 code of every amount of the order."),
    ITEMS("items", true, 1, PE_EVENT_MAX_ITEMS, "The order's line items."),
    NUM("shipping", false, 0, MONEY_MAX, "Shipping charged."),
    NUM("tax", false, 0, MONEY_MAX, "Tax charged."),
    NUM("discount", false, 0, MONEY_MAX, "Discount granted."),
    STR("coupon", false, 64, "Coupon code used."),
};

static const pe_prop_def_t EXPOSURE_ASSIGNED[] = {
    STR("flagKey", true, ID_LEN, "The feature flag evaluated."),
    STR("variant", true, ID_LEN, "The variant the visitor was assigned."),
};

#define EVENT(n, step, props, d)                                                                   \
    {                                                                                              \
        (n), (step), (props), PE_ARRAY_LEN(props), (d)                                             \
    }

static const pe_event_def_t EVENTS[] = {
    {"storefront.page.viewed", PE_FUNNEL_NONE, NULL, 0,
     "A page was viewed; the page itself is described by context.page and context.utm."},
    EVENT("storefront.product.viewed", PE_FUNNEL_NONE, PRODUCT_VIEWED,
          "A product detail page was viewed."),
    EVENT("storefront.cart.item_added", PE_FUNNEL_CART, CART_ITEM_ADDED,
          "A product was added to the cart."),
    EVENT("storefront.cart.viewed", PE_FUNNEL_CART, CART_VIEWED, "The cart was viewed."),
    EVENT("checkout.session.started", PE_FUNNEL_CHECKOUT, CHECKOUT_STARTED, "Checkout began."),
    EVENT("checkout.shipping.submitted", PE_FUNNEL_SHIPPING, SHIPPING_SUBMITTED,
          "Shipping details were submitted."),
    EVENT("checkout.payment.submitted", PE_FUNNEL_PAYMENT, PAYMENT_SUBMITTED,
          "Payment details were submitted."),
    EVENT("checkout.order.completed", PE_FUNNEL_CONFIRMATION, ORDER_COMPLETED,
          "An order was placed."),
    EVENT("experiment.exposure.assigned", PE_FUNNEL_NONE, EXPOSURE_ASSIGNED,
          "A visitor was exposed to a feature flag variant."),
};

const pe_event_def_t pe_events_custom_def = {
    "custom.<entity>.<action>", PE_FUNNEL_NONE, NULL, 0,
    "A merchant's own event; properties are free, bounded like custom."};

const pe_events_text_field_t pe_events_page_fields[] = {
    {"url", 2048}, {"path", 1024}, {"referrer", 2048}, {"title", 512}};
const size_t pe_events_page_nfields = PE_ARRAY_LEN(pe_events_page_fields);
const pe_events_text_field_t pe_events_utm_fields[] = {
    {"source", 256}, {"medium", 256}, {"campaign", 256}, {"term", 256}, {"content", 256}};
const size_t pe_events_utm_nfields = PE_ARRAY_LEN(pe_events_utm_fields);
_Static_assert(PE_ARRAY_LEN(pe_events_page_fields) <= PE_EVENTS_TEXT_FIELDS_MAX, "page fields");
_Static_assert(PE_ARRAY_LEN(pe_events_utm_fields) <= PE_EVENTS_TEXT_FIELDS_MAX, "utm fields");
const char *const pe_events_device_types[] = {"desktop", "mobile", "tablet", "other"};
const size_t pe_events_ndevice_types = PE_ARRAY_LEN(pe_events_device_types);

size_t pe_events_count(void)
{
    return PE_ARRAY_LEN(EVENTS);
}

const pe_event_def_t *pe_events_at(size_t index)
{
    return index < PE_ARRAY_LEN(EVENTS) ? &EVENTS[index] : NULL;
}

/* Length of a custom name part [a-z0-9_]{1,64} at s, or 0 when s does not start with one. */
static size_t custom_part(const char *s)
{
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_') {
        if (++n > PE_EVENTS_CUSTOM_PART_MAX)
            return 0;
    }
    return n;
}

bool pe_events_is_custom_name(const char *name)
{
    static const char prefix[] = "custom.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *p = name + sizeof prefix - 1;
    size_t n = custom_part(p);
    if (n == 0 || p[n] != '.')
        return false;
    p += n + 1;
    n = custom_part(p);
    return n > 0 && p[n] == '\0';
}

const pe_event_def_t *pe_events_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < PE_ARRAY_LEN(EVENTS); i++)
        if (strcmp(EVENTS[i].name, name) == 0)
            return &EVENTS[i];
    return pe_events_is_custom_name(name) ? &pe_events_custom_def : NULL;
}

const char *pe_events_funnel_step_name(pe_funnel_step_t step)
{
    switch (step) {
    case PE_FUNNEL_CART:
        return "cart";
    case PE_FUNNEL_CHECKOUT:
        return "checkout";
    case PE_FUNNEL_SHIPPING:
        return "shipping";
    case PE_FUNNEL_PAYMENT:
        return "payment";
    case PE_FUNNEL_CONFIRMATION:
        return "confirmation";
    case PE_FUNNEL_NONE:
        break;
    }
    return NULL;
}
