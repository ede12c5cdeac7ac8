/*
 * playbooks.c — the built-in catalogue of playbooks: what to do about a kind of finding
 * (kind × step × segment), with the change it makes, its effort, risk, cost model and a prior
 * range: the share of a finding's gap (the orders it loses) the change wins back, the source of
 * the prior named.
 *
 * The priors are deliberately conservative: each range is bounded above by the share of
 * abandoners who name the reason the playbook removes in Baymard Institute's checkout
 * abandonment survey (2024, US adults who abandoned an order in the last quarter: extra costs
 * too high 48 %, forced account creation 24–26 %, delivery too slow 21–23 %, did not trust the
 * site with card details 18–25 %, checkout too long or complicated 18–22 %, could not see the
 * total cost up front 21 %, errors 17 %, returns policy 12–15 %, not enough payment methods
 * 9–13 %, card declined 4–9 %) — removing a reason never brings back everyone who named it, so
 * the high end is a fraction of that share and the low end what a modest fix recovers. README
 * "Recommendations" lists every playbook with its prior and source. An experiment, not the
 * prior, decides whether a change stays.
 *
 * Invariants:
 *  1. Every built-in passes pe_doctor_playbook_check (tests/unit/doctor/test_playbooks.c).
 *  2. Together they cover every funnel step and both implementation methods.
 *  3. Pure data and pure functions: no I/O, no allocation, thread-safe.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pe/doctor.h"

#define BIT(x)    (1u << (x))
#define ALL_KINDS 0u
#define CART      BIT(1)
#define CHECKOUT  BIT(2)
#define SHIPPING  BIT(3)
#define PAYMENT   BIT(4)
#define CONFIRM   BIT(5)
#define DEVICE    BIT(PE_DOCTOR_DEVICE)
#define COUNTRY   BIT(PE_DOCTOR_COUNTRY)
#define SOURCE    BIT(PE_DOCTOR_SOURCE)
#define VISITOR   BIT(PE_DOCTOR_VISITOR)
#define CAMPAIGN  BIT(PE_DOCTOR_CAMPAIGN)
/* The dimensions the feature flag can target (flag_hooks.c maps them to OFREP context
 * attributes); hour band and weekday cannot be targeted, so no playbook fixes them. */
#define TARGETABLE (DEVICE | COUNTRY | SOURCE | VISITOR | CAMPAIGN)

#define BAYMARD                                                                                    \
    "Baymard Institute, checkout abandonment survey 2024 "                                         \
    "(baymard.com/lists/cart-abandonment-rate)"

static const char *const HANDHELD[] = {"mobile", "tablet", NULL};

static const pe_doctor_playbook_t BUILTIN[] = {
    {
        .key = "shipping-cost-upfront",
        .title = "Show shipping costs before checkout to {who}",
        .description = "Show the shipping cost and the order total in the cart, so that {who} "
                       "see the full price before they start the checkout.",
        .rationale = "Costs that appear late are the first reason buyers give for abandoning: "
                     "48 % name extra costs and 21 % say they could not see the total up front.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CHECKOUT | SHIPPING,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "feature_flag",
        .change_type = "copy",
        .selector = "/cart",
        .change = "The cart shows the shipping cost and the total, tax included",
        .before = "\"hidden until the shipping step\"",
        .after = "\"shown in the cart\"",
        .effort = 2,
        .risk = "low",
        .uplift_low = 0.02,
        .uplift_high = 0.08,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "free-shipping-threshold",
        .title = "Free shipping above a threshold for {who}",
        .description = "Offer free shipping from an order value just above today's average "
                       "order, and say how much is missing in the cart.",
        .rationale = "Shipping is the extra cost buyers object to most (48 % name extra costs); "
                     "a threshold above the average order pays part of its cost back in larger "
                     "baskets. It costs the shipping of every order above it.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CHECKOUT | SHIPPING,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "config_change",
        .action_type = "feature_flag",
        .change_type = "shipping",
        .selector = "/checkout/shipping",
        .change = "Free shipping from the threshold on",
        .before = "\"paid shipping\"",
        .after = "\"free from 1.2 x the average order\"",
        .effort = 3,
        .risk = "medium",
        .uplift_low = 0.04,
        .uplift_high = 0.12,
        .cost = PE_DOCTOR_COST_SHIPPING,
    },
    {
        .key = "mobile-address-form",
        .title = "A shorter address form for {who}",
        .description = "On phones and tablets: one address line, the postcode first with the "
                       "city filled in from it, the right keyboard for every field and no "
                       "optional fields shown by default.",
        .rationale = "Form length is the usability problem that hurts small screens most: "
                     "18-22 % of abandoners find checkout too long or complicated.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = SHIPPING | PAYMENT,
        .dims = TARGETABLE,
        .value_dim = PE_DOCTOR_DEVICE,
        .values = HANDHELD,
        .method = "feature_flag",
        .action_type = "feature_flag",
        .change_type = "layout",
        .selector = "/checkout/shipping",
        .change = "The compact address form on handheld devices",
        .before = "\"standard address form\"",
        .after = "\"compact address form\"",
        .effort = 5,
        .risk = "low",
        .uplift_low = 0.05,
        .uplift_high = 0.15,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "guest-checkout",
        .title = "Guest checkout for {who}",
        .description = "Let {who} buy without creating an account, and offer the account after "
                       "the order instead.",
        .rationale = "24-26 % of abandoners left because the store wanted them to create an "
                     "account; it weighs most on new visitors.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CHECKOUT | SHIPPING,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "feature_flag",
        .change_type = "layout",
        .selector = "/checkout",
        .change = "Guest checkout first; the account is offered after the order",
        .before = "\"account required\"",
        .after = "\"guest checkout\"",
        .effort = 5,
        .risk = "low",
        .uplift_low = 0.04,
        .uplift_high = 0.12,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "express-wallets",
        .title = "Express wallets for {who}",
        .description = "Offer Apple Pay and Google Pay at the top of the payment step, so that "
                       "{who} pay without typing card details.",
        .rationale = "Typing card details on a small screen is slow and error-prone; "
                     "18-22 % of abandoners find checkout too long, 9-13 % lack a payment "
                     "method they use.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = PAYMENT | CONFIRM,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "feature_flag",
        .change_type = "layout",
        .selector = "/checkout/payment",
        .change = "Apple Pay and Google Pay shown first at the payment step",
        .before = "\"cards only\"",
        .after = "\"express wallets first\"",
        .effort = 3,
        .risk = "low",
        .uplift_low = 0.03,
        .uplift_high = 0.10,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "local-payment-method",
        .title = "The local payment method for {who}",
        .description = "Offer the payment method most used in the visitor's country (iDEAL in "
                       "NL, Bancontact in BE, Klarna in SE, …) at the payment step.",
        .rationale = "9-13 % of abandoners did not find a payment method they use; in several "
                     "European countries most online payments use a local scheme, not cards.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = PAYMENT | CONFIRM,
        .dims = COUNTRY,
        .method = "config_change",
        .action_type = "feature_flag",
        .change_type = "layout",
        .selector = "/checkout/payment",
        .change = "The country's most used payment method offered first",
        .before = "false",
        .after = "true",
        .effort = 5,
        .risk = "low",
        .uplift_low = 0.05,
        .uplift_high = 0.15,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "payment-retry",
        .title = "Recover declined payments for {who}",
        .description = "When a payment fails, keep the order, explain the decline in plain words "
                       "and offer another method on the same page.",
        .rationale = "4-9 % of abandoners had their card declined; most of them would pay with "
                     "another method if the store did not send them back to the start.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CONFIRM,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "workflow",
        .change_type = "layout",
        .selector = "/checkout/payment",
        .change = "A declined payment keeps the order and offers another method",
        .before = "\"decline returns to the payment step\"",
        .after = "\"decline offers another method in place\"",
        .effort = 5,
        .risk = "low",
        .uplift_low = 0.02,
        .uplift_high = 0.06,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "trust-returns-messaging",
        .title = "Trust and returns messaging for {who}",
        .description = "Show the returns policy, secure-payment and delivery promises next to the "
                       "{step} step's button.",
        .rationale = "18-25 % of abandoners did not trust the site with their card and 12-15 % "
                     "found the returns policy unsatisfactory; new visitors know the store least.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CHECKOUT | SHIPPING | PAYMENT,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "copy_change",
        .change_type = "copy",
        .selector = "/checkout",
        .change = "Returns, secure payment and delivery promises beside the button",
        .before = "\"none\"",
        .after = "\"returns, security and delivery promises\"",
        .effort = 1,
        .risk = "low",
        .uplift_low = 0.01,
        .uplift_high = 0.05,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "stock-urgency",
        .title = "Show real stock levels to {who}",
        .description = "Show \"only N left\" on products with little stock (the catalogue's real "
                       "count, never an invented one).",
        .rationale = "Scarcity that is true moves hesitant buyers to act; the change shows the "
                     "catalogue's own stock, so it cannot mislead.",
        .source = "Cialdini, Influence (scarcity principle); " BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CART,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "copy_change",
        .change_type = "copy",
        .selector = "/products",
        .change = "\"Only N left\" on products with fewer than 10 in stock",
        .before = "\"no stock message\"",
        .after = "\"only N left\"",
        .effort = 2,
        .risk = "low",
        .uplift_low = 0.01,
        .uplift_high = 0.04,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "category-discount",
        .title = "{amount} % off {category} for {who}",
        .description = "Take {amount} % off every product of {category}, the category with the "
                       "most margin to give, for {who}.",
        .rationale = "Price is the reason behind most extra-cost abandonment (48 %); a discount "
                     "moves the hesitant but also gives margin away on every order that would "
                     "have come anyway, so it is proposed only when the expected profit net of "
                     "that cost is positive, and the store's margin floors still apply.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CART | CHECKOUT,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "config_change",
        .action_type = "feature_flag",
        .change_type = "discount",
        .change = "{amount} % off every product of {category}",
        .before = "0",
        .after = "{amount}",
        .needs_category = true,
        .effort = 2,
        .risk = "medium",
        .uplift_low = 0.05,
        .uplift_high = 0.15,
        .cost = PE_DOCTOR_COST_DISCOUNT,
        .amount = 10,
    },
    {
        .key = "cart-reminder",
        .title = "Remind {who} of the cart they left",
        .description = "Keep the cart for 30 days and, for visitors who gave their email, send "
                       "one reminder an hour after they left it.",
        .rationale = "Many abandoners were \"just looking\" or comparing; a saved cart and one "
                     "timely reminder brings part of them back.",
        .source = "Baymard Institute, cart abandonment rate statistics (about 70 % of carts are "
                  "abandoned; most abandoners were browsing or comparing)",
        .kinds = ALL_KINDS,
        .steps = CHECKOUT,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "config_change",
        .action_type = "timing_change",
        .change_type = "timing",
        .change = "One reminder an hour after the cart is left",
        .before = "\"none\"",
        .after = "\"PT1H\"",
        .effort = 3,
        .risk = "low",
        .uplift_low = 0.02,
        .uplift_high = 0.07,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "delivery-dates",
        .title = "Show delivery dates to {who}",
        .description = "Show the expected delivery date of every shipping option, and offer an "
                       "express option.",
        .rationale = "21-23 % of abandoners left because delivery was too slow; a date is more "
                     "convincing than \"3-5 working days\".",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = SHIPPING | PAYMENT,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "config_change",
        .action_type = "feature_flag",
        .change_type = "copy",
        .selector = "/checkout/shipping",
        .change = "Every shipping option shows its delivery date",
        .before = "false",
        .after = "true",
        .effort = 3,
        .risk = "low",
        .uplift_low = 0.02,
        .uplift_high = 0.08,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "campaign-landing-match",
        .title = "Match the landing page to what brought {who}",
        .description = "Send {who} to a page that shows the product or offer the campaign "
                       "promised, with it already in view.",
        .rationale = "A visitor who does not find what the ad promised leaves before the cart; "
                     "landing-page relevance is the lever the campaign's owner controls.",
        .source = "Google Ads Help, \"About landing page experience\" (relevance of the landing "
                  "page to the ad)",
        .kinds = ALL_KINDS,
        .steps = CART,
        .dims = SOURCE | CAMPAIGN,
        .method = "feature_flag",
        .action_type = "segment_target",
        .change_type = "targeting",
        .selector = "/",
        .change = "The campaign's visitors land on the promised product or offer",
        .before = "\"home page\"",
        .after = "\"the campaign's landing page\"",
        .effort = 3,
        .risk = "low",
        .uplift_low = 0.03,
        .uplift_high = 0.10,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "inline-validation",
        .title = "Inline form validation for {who}",
        .description = "Check every field of the {step} step as it is filled in, say what is "
                       "wrong next to it, and keep what was typed after an error.",
        .rationale = "Errors found only after submit, and forms that forget what was typed, are "
                     "behind much of the 17 % who met errors and the 18-22 % who found checkout "
                     "too complicated.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = SHIPPING | PAYMENT | CONFIRM,
        .dims = TARGETABLE,
        .store_wide = true,
        .method = "feature_flag",
        .action_type = "feature_flag",
        .change_type = "layout",
        .selector = "/checkout",
        .change = "Fields are checked as they are filled in",
        .before = "\"checked on submit\"",
        .after = "\"checked inline\"",
        .effort = 3,
        .risk = "low",
        .uplift_low = 0.02,
        .uplift_high = 0.07,
        .cost = PE_DOCTOR_COST_NONE,
    },
    {
        .key = "first-order-discount",
        .title = "{amount} % off the first order of {who}",
        .description = "Offer new visitors {amount} % off their first order in the cart.",
        .rationale = "A new visitor has no reason yet to trust the store; a first-order discount "
                     "lowers the risk of trying it but gives margin away on every first order, so "
                     "it is proposed only when the expected profit net of that cost is positive.",
        .source = BAYMARD,
        .kinds = ALL_KINDS,
        .steps = CART | CHECKOUT,
        .dims = VISITOR | DEVICE | COUNTRY,
        .value_dim = PE_DOCTOR_VISITOR,
        .values = (const char *const[]){"new", NULL},
        .method = "config_change",
        .action_type = "feature_flag",
        .change_type = "discount",
        .change = "{amount} % off a new visitor's first order",
        .before = "0",
        .after = "{amount}",
        .effort = 2,
        .risk = "medium",
        .uplift_low = 0.05,
        .uplift_high = 0.15,
        .cost = PE_DOCTOR_COST_DISCOUNT,
        .amount = 10,
    },
};

const pe_doctor_playbook_t *pe_doctor_playbooks_builtin(size_t *count)
{
    *count = PE_ARRAY_LEN(BUILTIN);
    return BUILTIN;
}

static bool one_of(const char *s, const char *const *list)
{
    for (; s && *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static bool key_ok(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n >= PE_DOCTOR_PLAYBOOK_KEY_MAX || k[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-'))
            return false;
    return true;
}

/* before/after with {amount} replaced parse as a JSON string, number or boolean. */
static bool json_ok(const pe_doctor_playbook_t *pb, const char *text)
{
    char buf[512], amount[32];
    snprintf(amount, sizeof amount, "%g", pb->amount);
    size_t o = 0;
    for (const char *p = text; *p && o + 1 < sizeof buf; p++) {
        if (strncmp(p, "{amount}", 8) == 0) {
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", amount);
            p += 7;
        } else {
            buf[o++] = *p;
        }
    }
    if (o >= sizeof buf - 1)
        return false;
    buf[o] = '\0';
    cJSON *j = cJSON_ParseWithLengthOpts(buf, o + 1, NULL, true); /* the NUL included */
    /* ChangeDetail.before/after: a string, number or boolean (the contract) */
    bool ok = cJSON_IsString(j) || cJSON_IsNumber(j) || cJSON_IsBool(j);
    cJSON_Delete(j);
    return ok;
}

int pe_doctor_playbook_check(const pe_doctor_playbook_t *pb, pe_refusal_t *err)
{
    static const char *const METHODS[] = {"feature_flag", "config_change", NULL};
    static const char *const ACTIONS[] = {"feature_flag",  "workflow",       "copy_change",
                                          "timing_change", "segment_target", NULL};
    static const char *const CHANGES[] = {"price",  "discount", "shipping",  "copy",
                                          "layout", "timing",   "targeting", NULL};
    static const char *const RISKS[] = {"low", "medium", "high", NULL};
    const char *k = pb->key && key_ok(pb->key) ? pb->key : "playbook";
    if (!key_ok(pb->key))
        return pe_refuse(err, PE_EINVAL, "invalid_format", "key: must be 1..40 of [a-z0-9-]");
    const struct {
        const char *name, *value;
    } texts[] = {{"title", pb->title},         {"description", pb->description},
                 {"rationale", pb->rationale}, {"source", pb->source},
                 {"change", pb->change},       {"before", pb->before},
                 {"after", pb->after}};
    for (size_t i = 0; i < PE_ARRAY_LEN(texts); i++)
        if (!texts[i].value || !texts[i].value[0] || strlen(texts[i].value) > 400)
            return pe_refuse(err, PE_EINVAL, "missing_field", "%s.%s: required, 1..400 bytes", k,
                             texts[i].name);
    if (!one_of(pb->method, METHODS))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s.method: must be feature_flag or config_change", k);
    if (!one_of(pb->action_type, ACTIONS))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s.action_type: must be an actionPlan.type of the ChangeSet contract", k);
    if (!one_of(pb->change_type, CHANGES))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s.change_type: must be a ChangeDetail.type of the ChangeSet contract",
                         k);
    if (!one_of(pb->risk, RISKS))
        return pe_refuse(err, PE_EINVAL, "invalid_format", "%s.risk: must be low, medium or high",
                         k);
    if (pb->steps == 0 || (pb->steps & ~0x3eu))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.steps: bits of the steps 1..5", k);
    if (pb->dims & ~((1u << PE_DOCTOR_DIMS) - 1))
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.dims: bits of the dimensions", k);
    if (pb->kinds & ~0xfu)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.kinds: bits of the finding kinds", k);
    if (pb->values && ((unsigned)pb->value_dim >= PE_DOCTOR_DIMS ||
                       !(pb->dims & (1u << pb->value_dim)) || !pb->values[0]))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s.values: value_dim must be one of dims, with at least one value", k);
    if (!(pb->uplift_low > 0 && pb->uplift_low <= pb->uplift_high && pb->uplift_high <= 1))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "%s.uplift: must be 0 < uplift_low <= uplift_high <= 1", k);
    if (pb->effort < 1 || pb->effort > 13)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.effort: must be 1..13 points", k);
    if (pb->cost == PE_DOCTOR_COST_DISCOUNT && !(pb->amount > 0 && pb->amount < 100))
        return pe_refuse(err, PE_EINVAL, "out_of_range",
                         "%s.amount: a discount must be in (0, 100) %%", k);
    if ((unsigned)pb->cost > PE_DOCTOR_COST_SHIPPING)
        return pe_refuse(err, PE_EINVAL, "out_of_range", "%s.cost: unknown cost model", k);
    if (!json_ok(pb, pb->before) || !json_ok(pb, pb->after))
        return pe_refuse(err, PE_EINVAL, "invalid_format",
                         "%s.before/after: must be a JSON string, number or boolean (with {amount} "
                         "replaced)",
                         k);
    return 0;
}

bool pe_doctor_playbook_matches(const pe_doctor_playbook_t *pb, const pe_doctor_finding_t *f)
{
    if (f->step < 1 || f->step > PE_DOCTOR_STEPS || !(pb->steps & (1u << f->step)))
        return false;
    if (pb->kinds && !(pb->kinds & (1u << f->kind)))
        return false;
    bool any = false;
    for (int d = 0; d < PE_DOCTOR_DIMS; d++)
        if (f->has[d]) {
            any = true;
            if (!(pb->dims & (1u << d)))
                return false;
        }
    if (!any && !pb->store_wide)
        return false;
    if (pb->values)
        return f->has[pb->value_dim] && one_of(f->value[pb->value_dim], pb->values);
    return true;
}
