/*
 * generate.c — the traffic generator: a catalogue, visitors, and day after day of sessions
 * that browse, add to cart and go through checkout with per-step probabilities shaped by the
 * scenario; the realised truth is counted as the sessions are planned.
 *
 * Two phases, so that rendering JSON (the expensive part) runs on several threads while the
 * result stays deterministic:
 *
 *   main thread   plan_day(d)  ─┐  sequential: every random draw, the visitor pool, the truth
 *                               ▼
 *                 queue of planned days (at most QUEUE_DAYS waiting)
 *                               │
 *   workers       render_session() → batches of ≤ 500 events → deliver()
 *
 * Invariants:
 *  1. Planning draws from the day stream (seed, d, DAY_STREAM) and each session's own stream
 *     (seed, d, i); rendering draws nothing. So events and truth depend on the parameters
 *     alone, not on the number of workers or their timing. Within a session the five step
 *     decisions are drawn first, so two scenarios that differ only in probabilities keep every
 *     other draw of every session aligned.
 *  2. A session starts and ends inside its store-local day [day_starts[d], day_starts[d+1]).
 *  3. Counting happens only for sessions that are emitted (cut-off applied first); a session
 *     cut off leaves the visitor pool as if it never happened.
 *  4. Amounts are integer cents throughout; JSON carries cents / 100 (which prints back as the
 *     same two-decimal text), and the truth prints cents as exact decimals.
 *  5. A planned day is freed only after every one of its sessions has been rendered.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/events.h"
#include "sim_internal.h"

#define DAY_STREAM    UINT64_MAX
#define CATALOG_A     UINT64_MAX
#define CATALOG_B     0x636174616c6f67ULL /* "catalog" */
#define MAX_BASKET    6
#define MAX_VIEWS     9
#define CHUNK         32 /* sessions a worker takes at once */
#define QUEUE_DAYS    3
#define BATCH_EVENTS  PE_EVENT_BATCH_MAX_EVENTS
#define US_PER_MS     1000LL
#define MS_PER_S      1000LL
#define DEFAULT_HOST  "shop.example"
#define FREE_SHIPPING 6000 /* cents: standard shipping is free from here */

/* ---- fixed shapes of simulated traffic --------------------------------------------------------
 */

#define NCATEGORIES 5
static const char *const CATEGORIES[NCATEGORIES] = {"Apparel", "Shoes", "Accessories", "Home",
                                                    "Beauty"};
static const double CATEGORY_MEDIAN[NCATEGORIES] = {35, 85, 25, 45, 20};
static const char *const ADJECTIVES[] = {"Classic", "Everyday", "Premium", "Urban",  "Soft",
                                         "Bold",    "Light",    "Vintage", "Modern", "Cosy"};
static const char *const NOUNS[NCATEGORIES][4] = {
    {"T-Shirt", "Hoodie", "Jacket", "Shirt"},    {"Sneaker", "Boot", "Sandal", "Loafer"},
    {"Cap", "Scarf", "Backpack", "Wallet"},      {"Mug", "Lamp", "Blanket", "Vase"},
    {"Serum", "Lip Balm", "Soap", "Face Cream"},
};

/* Sessions by store-local hour, and by weekday (Monday first). */
static const double HOURS[24] = {0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 0.9, 1.3, 1.6, 1.8, 1.9,
                                 2.1, 2.0,  1.8, 1.7,  1.7,  1.8,  2.0, 2.3, 2.5, 2.3, 1.7, 1.1};
static const double WEEKDAYS[7] = {0.92, 0.90, 0.94, 0.98, 1.05, 1.12, 1.09};

#define NSHIPPING 3
static const char *const SHIPPING_METHODS[NSHIPPING] = {"standard", "express", "pickup"};
static const double SHIPPING_WEIGHTS[NSHIPPING] = {0.72, 0.22, 0.06};
static const int64_t SHIPPING_CENTS[NSHIPPING] = {490, 990, 0};

static const double QUANTITY_WEIGHTS[3] = {0.80, 0.15, 0.05};

static const char *const USER_AGENTS[SIM_NDEVICES] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
};

typedef enum {
    K_PAGE,
    K_PRODUCT,
    K_ADD,
    K_CART,
    K_CHECKOUT,
    K_SHIPPING,
    K_PAYMENT,
    K_ORDER
} kind_t;
static const char *const KIND_NAMES[] = {
    "storefront.page.viewed",     "storefront.product.viewed", "storefront.cart.item_added",
    "storefront.cart.viewed",     "checkout.session.started",  "checkout.shipping.submitted",
    "checkout.payment.submitted", "checkout.order.completed",
};

/* ---- data ------------------------------------------------------------------------------------ */

typedef struct {
    int64_t ts_ms;
    uint16_t product; /* K_PRODUCT, K_ADD, K_PAGE (landing product) */
    uint8_t kind, qty;
} sim_ev_t;

typedef struct evbuf {
    sim_ev_t *ev;
    size_t n, cap;
} evbuf_t;

typedef struct {
    uint16_t product;
    uint8_t qty;
} line_t;

typedef struct {
    uint32_t index; /* within its day */
    uint32_t visitor;
    uint32_t customer;     /* 1-based customer number known when the session starts, 0 none */
    uint32_t new_customer; /* 1-based number the order of this session creates, 0 none */
    uint8_t device, country, source, campaign; /* campaign: index in the source's list, 255 none */
    uint8_t landing;                           /* 0 home, 1 product, 2 category */
    uint8_t shipping, payment, reached, nbasket;
    line_t basket[MAX_BASKET];
    int64_t subtotal_cents, shipping_cents;
    double price; /* multiplier of the prices this session pays (a treatment's); 1 = list */
    size_t ev_off;
    uint16_t nev;
} sim_session_t;

typedef struct sim_day {
    struct sim_day *next;
    unsigned d;
    sim_session_t *sessions;
    size_t n;
    sim_ev_t *events;
    size_t nev;
    size_t taken, finished;
} sim_day_t;

typedef struct {
    uint64_t sessions, events, product_views, steps[SIM_NSTEPS], orders, units, revenue_cents;
    uint64_t orders_new_customers, orders_returning_customers;
    uint64_t payments[SIM_NPAYMENTS];
} counts_t;

typedef struct {
    counts_t total;
    uint64_t visitors, new_visitors;
    counts_t device[SIM_NDEVICES], country[SIM_NCOUNTRIES], source[SIM_NSOURCES];
} day_truth_t;

typedef struct {
    uint8_t device, country;
    uint32_t customer; /* 1-based, 0 = never ordered */
    int32_t last_day;  /* the last day counted as visited, -1 none */
} visitor_t;

struct pe_sim {
    pe_sim_params_t p;
    int64_t *day_starts;
    int first_day_num; /* days since 1970-01-01 of day 0 */
    char first_day[11];
    char currency[4];
    char host[128];
    const pe_sim_scenario_t *sc;
    sim_product_t *products;
    size_t nproducts;
    double *popularity; /* the products' popularity as one array (pe_sim_rng_pick's weights) */

    visitor_t *visitors;
    size_t nvisitors, cap_visitors;
    uint32_t ncustomers;

    day_truth_t *truth; /* one per day */
    counts_t *override_truth;
    counts_t total;
    uint64_t visitors_total, sessions_cut;

    /* the work queue between the planner and the workers */
    pthread_mutex_t mu;
    pthread_cond_t work, room;
    sim_day_t *queue;
    size_t queued;
    bool planning_done;
    int error;
    pe_sim_deliver_fn deliver;
    void *ctx;
    unsigned next_day; /* the first day not generated yet */

    sim_hooks_t hooks;    /* the closed loop's (autopilot.c); zeroed = none */
    struct evbuf scratch; /* a counterfactual journey's events, reused */
};

/* ---- dates ----------------------------------------------------------------------------------- */

static void civil_from_days(int z, char out[11])
{
    int64_t y;
    int m, d;
    pe_civil_from_days(z, &y, &m, &d);
    if (snprintf(out, 11, "%04d-%02d-%02d", (int)(y % 10000), m % 100, d % 100) < 0)
        out[0] = '\0';
}

static bool parse_date(const char *s, int *days)
{
    int y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return false;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    *days = (int)pe_days_from_civil(y, m, d);
    char back[11];
    civil_from_days(*days, back);
    return strcmp(back, s) == 0; /* refuses 2026-02-30 */
}

/* ---- ids ---------------------------------------------------------------------------------------
 */

static void hex_id(char *out, size_t outlen, char tag, uint64_t seed, uint64_t a, uint64_t b)
{
    pe_sim_rng_t r;
    pe_sim_rng_stream(&r, seed ^ ((uint64_t)(unsigned char)tag << 56), a, b);
    snprintf(out, outlen, "%c-%016llx", tag, (unsigned long long)pe_sim_rng_next(&r));
}

/* ---- construction ---------------------------------------------------------------------------- */

static int64_t round_price(double euros)
{
    long whole = lround(euros);
    if (whole < 2)
        whole = 2;
    return (int64_t)whole * 100 - 1; /* 34.99 */
}

/* The scenario's catalog as given, or `products` generated ones: SKUs SIM-0001…, five
 * categories, log-normal prices ending in .99, margins 35–65 %, Zipf-like popularity. */
static bool build_catalog(pe_sim_t *sim)
{
    pe_sim_rng_t r;
    pe_sim_rng_stream(&r, sim->p.seed, CATALOG_A, CATALOG_B);
    sim->nproducts = sim->sc->products;
    sim->products = calloc(sim->nproducts, sizeof *sim->products);
    sim->popularity = calloc(sim->nproducts, sizeof *sim->popularity);
    if (!sim->products || !sim->popularity)
        return false;
    for (size_t i = 0; i < sim->nproducts; i++) {
        sim_product_t *p = &sim->products[i];
        if (sim->sc->catalog) {
            *p = sim->sc->catalog[i];
            sim->popularity[i] = p->popularity;
            continue;
        }
        size_t category = i % NCATEGORIES;
        snprintf(p->category, sizeof p->category, "%s", CATEGORIES[category]);
        if (snprintf(p->sku, sizeof p->sku, "SIM-%04u", (unsigned)(i + 1) % 100000u) < 0)
            return false;
        size_t adj = (size_t)pe_sim_rng_below(&r, PE_ARRAY_LEN(ADJECTIVES));
        size_t noun = (size_t)pe_sim_rng_below(&r, 4);
        if (snprintf(p->name, sizeof p->name, "%s %s %zu", ADJECTIVES[adj], NOUNS[category][noun],
                     i + 1) < 0)
            return false;
        p->price_cents = round_price(CATEGORY_MEDIAN[category] * exp(0.45 * pe_sim_rng_normal(&r)));
        double margin = 0.35 + 0.30 * pe_sim_rng_uniform(&r);
        p->cost_cents = (int64_t)llround((double)p->price_cents * (1.0 - margin));
        p->stock = 5 + (int)pe_sim_rng_below(&r, 500);
        /* Zipf-like popularity over a shuffled rank, so popular products span categories. */
        p->popularity = 1.0 / pow(1.0 + (double)pe_sim_rng_below(&r, sim->nproducts), 0.8);
        sim->popularity[i] = p->popularity;
    }
    return true;
}

pe_sim_t *pe_sim_new(const pe_sim_params_t *p, char *err, size_t errlen)
{
    pe_sim_t *sim = NULL;
    if (errlen)
        err[0] = '\0';
    if (!p->scenario || p->days < 1 || p->days > PE_SIM_MAX_DAYS || p->sessions_per_day < 1 ||
        p->sessions_per_day > PE_SIM_MAX_SESSIONS_PER_DAY || !p->day_starts_us || !p->currency ||
        strlen(p->currency) != 3) {
        snprintf(err, errlen, "bad parameters (days 1..%d, sessions per day 1..%d)",
                 PE_SIM_MAX_DAYS, PE_SIM_MAX_SESSIONS_PER_DAY);
        return NULL;
    }
    for (unsigned d = 0; d < p->days; d++) {
        int64_t len = p->day_starts_us[d + 1] - p->day_starts_us[d];
        if (len < 22 * 3600 * 1000000LL || len > 26 * 3600 * 1000000LL) {
            snprintf(err, errlen, "day %u is %lld µs long; days are 22..26 hours", d,
                     (long long)len);
            return NULL;
        }
    }
    sim = calloc(1, sizeof *sim);
    if (!sim)
        goto nomem;
    sim->p = *p;
    sim->sc = p->scenario;
    if (!parse_date(p->first_day, &sim->first_day_num)) {
        snprintf(err, errlen, "first day '%s' is not a YYYY-MM-DD date",
                 p->first_day ? p->first_day : "");
        free(sim);
        return NULL;
    }
    snprintf(sim->first_day, sizeof sim->first_day, "%s", p->first_day);
    snprintf(sim->currency, sizeof sim->currency, "%s", p->currency);
    snprintf(sim->host, sizeof sim->host, "%s", p->host ? p->host : DEFAULT_HOST);
    sim->day_starts = malloc((p->days + 1) * sizeof *sim->day_starts);
    sim->truth = calloc(p->days, sizeof *sim->truth);
    sim->override_truth = calloc(sim->sc->noverrides + 1, sizeof *sim->override_truth);
    if (!sim->day_starts || !sim->truth || !sim->override_truth)
        goto nomem;
    memcpy(sim->day_starts, p->day_starts_us, (p->days + 1) * sizeof *sim->day_starts);
    sim->p.day_starts_us = sim->day_starts;
    sim->p.first_day = sim->first_day;
    sim->p.currency = sim->currency;
    sim->p.host = sim->host;
    if (!build_catalog(sim))
        goto nomem;
    pthread_mutex_init(&sim->mu, NULL);
    pthread_cond_init(&sim->work, NULL);
    pthread_cond_init(&sim->room, NULL);
    return sim;
nomem:
    snprintf(err, errlen, "out of memory");
    if (sim) {
        free(sim->day_starts);
        free(sim->truth);
        free(sim->override_truth);
        free(sim->products);
        free(sim->popularity);
        free(sim);
    }
    return NULL;
}

static void day_free(sim_day_t *day)
{
    if (!day)
        return;
    free(day->sessions);
    free(day->events);
    free(day);
}

void pe_sim_free(pe_sim_t *sim)
{
    if (!sim)
        return;
    while (sim->queue) {
        sim_day_t *next = sim->queue->next;
        day_free(sim->queue);
        sim->queue = next;
    }
    pthread_mutex_destroy(&sim->mu);
    pthread_cond_destroy(&sim->work);
    pthread_cond_destroy(&sim->room);
    free(sim->day_starts);
    free(sim->truth);
    free(sim->override_truth);
    free(sim->products);
    free(sim->popularity);
    free(sim->visitors);
    free(sim->scratch.ev);
    free(sim);
}

static cJSON *money(int64_t cents)
{
    return cJSON_CreateNumber((double)cents / 100.0);
}

cJSON *pe_sim_catalog_json(const pe_sim_t *sim)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < sim->nproducts; i++) {
        const sim_product_t *p = &sim->products[i];
        cJSON *o = cJSON_CreateObject();
        bool ok = o && cJSON_AddItemToArray(arr, o);
        if (!ok) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        ok = cJSON_AddStringToObject(o, "sku", p->sku) &&
             cJSON_AddStringToObject(o, "name", p->name) &&
             cJSON_AddStringToObject(o, "category", p->category) &&
             cJSON_AddItemToObject(o, "price", money(p->price_cents)) &&
             cJSON_AddItemToObject(o, "cost", money(p->cost_cents)) &&
             (p->stock < 0 ? cJSON_AddNullToObject(o, "stock")
                           : cJSON_AddNumberToObject(o, "stock", p->stock)) &&
             cJSON_AddStringToObject(o, "currency", sim->currency);
        if (!ok) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* ---- planning (main thread) --------------------------------------------------------------------
 */

static bool ev_push(evbuf_t *b, kind_t kind, int64_t ts_ms, uint16_t product, uint8_t qty)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        sim_ev_t *ev = realloc(b->ev, cap * sizeof *ev);
        if (!ev)
            return false;
        b->ev = ev;
        b->cap = cap;
    }
    b->ev[b->n++] =
        (sim_ev_t){.ts_ms = ts_ms, .product = product, .kind = (uint8_t)kind, .qty = qty};
    return true;
}

static int64_t between_ms(pe_sim_rng_t *r, int lo_s, int hi_s)
{
    return lo_s * MS_PER_S + (int64_t)pe_sim_rng_below(r, (uint64_t)(hi_s - lo_s) * MS_PER_S);
}

static void count_session(counts_t *c, const sim_session_t *s, bool first_order)
{
    c->sessions++;
    c->events += s->nev;
    for (int k = 0; k < s->reached; k++)
        c->steps[k]++;
    if (s->reached >= 4)
        c->payments[s->payment]++;
    if (s->reached == SIM_NSTEPS) {
        c->orders++;
        c->revenue_cents += s->subtotal_cents + s->shipping_cents;
        for (int i = 0; i < s->nbasket; i++)
            c->units += s->basket[i].qty;
        if (first_order)
            c->orders_new_customers++;
        else
            c->orders_returning_customers++;
    }
}

static bool visitor_add(pe_sim_t *sim, uint8_t device, uint8_t country)
{
    if (sim->nvisitors == sim->cap_visitors) {
        size_t cap = sim->cap_visitors ? sim->cap_visitors * 2 : 4096;
        visitor_t *v = realloc(sim->visitors, cap * sizeof *v);
        if (!v)
            return false;
        sim->visitors = v;
        sim->cap_visitors = cap;
    }
    sim->visitors[sim->nvisitors++] =
        (visitor_t){.device = device, .country = country, .customer = 0, .last_day = -1};
    return true;
}

/* The price a session pays for a product: the list price times its treatment's multiplier. */
static int64_t paid_cents(const pe_sim_t *sim, const sim_session_t *s, uint16_t product)
{
    int64_t list = sim->products[product].price_cents;
    return s->price == 1.0 ? list : (int64_t)llround((double)list * s->price);
}

/* The journey of a session whose s->reached is decided: page views, basket, shipping and
 * payment choices, the checkout steps it reaches, as offsets from its start appended to evs.
 * Draws from r only. *t_end is the last offset. Returns false on ENOMEM. */
static bool draw_journey(pe_sim_t *sim, pe_sim_rng_t *r, sim_session_t *s, const double *pay,
                         evbuf_t *evs, int64_t *t_end)
{
    int64_t t = 0;
    double lu = pe_sim_rng_uniform(r);
    s->landing = lu < 0.45 ? 0 : lu < 0.8 ? 1 : 2;
    uint16_t landing_product = (uint16_t)pe_sim_rng_pick(r, sim->popularity, sim->nproducts);
    if (!ev_push(evs, K_PAGE, t, landing_product, 0))
        return false;
    unsigned views = 1 + pe_sim_rng_poisson(r, 1.3, MAX_VIEWS - 1);
    uint16_t viewed[MAX_VIEWS];
    for (unsigned v = 0; v < views; v++) {
        viewed[v] = v == 0 && s->landing == 1
                        ? landing_product
                        : (uint16_t)pe_sim_rng_pick(r, sim->popularity, sim->nproducts);
        t += v == 0 && s->landing == 1 ? 1000 : between_ms(r, 8, 60);
        if (!ev_push(evs, K_PRODUCT, t, viewed[v], 0))
            return false;
    }
    if (s->reached >= 1) {
        unsigned items = 1 + pe_sim_rng_poisson(r, 0.45, MAX_BASKET - 1);
        for (unsigned k = 0; k < items; k++) {
            uint16_t product = k < views
                                   ? viewed[k]
                                   : (uint16_t)pe_sim_rng_pick(r, sim->popularity, sim->nproducts);
            uint8_t qty = (uint8_t)(1 + pe_sim_rng_pick(r, QUANTITY_WEIGHTS, 3));
            t += between_ms(r, 5, 40);
            if (!ev_push(evs, K_ADD, t, product, qty))
                return false;
            int at = -1;
            for (int b = 0; b < s->nbasket; b++)
                if (s->basket[b].product == product)
                    at = b;
            if (at >= 0)
                s->basket[at].qty = (uint8_t)(s->basket[at].qty + qty);
            else
                s->basket[s->nbasket++] = (line_t){product, qty};
            s->subtotal_cents += paid_cents(sim, s, product) * qty;
        }
        t += between_ms(r, 3, 20);
        if (!ev_push(evs, K_CART, t, 0, 0))
            return false;
    }
    s->shipping = (uint8_t)pe_sim_rng_pick(r, SHIPPING_WEIGHTS, NSHIPPING);
    s->shipping_cents = SHIPPING_CENTS[s->shipping];
    if (s->shipping == 0 && s->subtotal_cents >= FREE_SHIPPING)
        s->shipping_cents = 0;
    s->payment = (uint8_t)pe_sim_rng_pick(r, pay, SIM_NPAYMENTS);
    static const struct {
        kind_t kind;
        int lo, hi;
    } CHECKOUT[] = {
        {K_CHECKOUT, 10, 60}, {K_SHIPPING, 30, 180}, {K_PAYMENT, 20, 120}, {K_ORDER, 5, 25}};
    for (int k = 0; k < 4; k++) {
        int64_t gap = between_ms(r, CHECKOUT[k].lo, CHECKOUT[k].hi);
        if (s->reached >= k + 2) {
            t += gap;
            if (!ev_push(evs, CHECKOUT[k].kind, t, 0, 0))
                return false;
        }
    }
    if (s->reached < SIM_NSTEPS)
        s->shipping_cents = 0;
    *t_end = t;
    return true;
}

/* What a session came to, for the closed loop's truth. */
static void outcome_of(const pe_sim_t *sim, const sim_session_t *s, sim_outcome_t *o)
{
    memset(o, 0, sizeof *o);
    o->reached = s->reached;
    if (s->reached < SIM_NSTEPS)
        return;
    o->orders = 1;
    o->revenue_cents = s->subtotal_cents + s->shipping_cents;
    for (int b = 0; b < s->nbasket; b++)
        o->cost_cents += sim->products[s->basket[b].product].cost_cents * s->basket[b].qty;
}

/* The funnel the treatments of t except `skip` (SIZE_MAX: none skipped) make of prob, in
 * place: each step's drop-off times its multipliers, then the chance to complete the order
 * times each treatment's conversion multiplier, taken at that treatment's step (the earliest
 * when it has none) and passed on to the next steps as far as a step's probability must stay
 * ≤ 1. *price gets their price multiplier. */
static void apply_treatment(const sim_treatment_t *t, size_t skip, double prob[SIM_NSTEPS],
                            double *price)
{
    double drop[SIM_NSTEPS], conv[SIM_NSTEPS];
    *price = 1.0;
    for (int k = 0; k < SIM_NSTEPS; k++)
        drop[k] = conv[k] = 1.0;
    for (size_t i = 0; i < t->n; i++) {
        if (i == skip)
            continue;
        const sim_effect_t *e = &t->effect[i];
        for (int k = 0; k < SIM_NSTEPS; k++)
            drop[k] *= e->drop[k];
        conv[e->conversion_step >= 0 && e->conversion_step < SIM_NSTEPS ? e->conversion_step : 0] *=
            e->conversion;
        *price *= e->price;
    }
    double carry = 1.0;
    for (int k = 0; k < SIM_NSTEPS; k++) {
        double d = (1.0 - prob[k]) * drop[k];
        prob[k] = 1.0 - (d > 1.0 ? 1.0 : d);
        carry *= conv[k];
        if (carry == 1.0 || prob[k] <= 0)
            continue;
        double want = prob[k] * carry;
        double got = want > 1.0 ? 1.0 : want;
        carry = want / got;
        prob[k] = got;
    }
}

/* The outcome of session s redrawn from the same random numbers (the stream r as it stood
 * before the journey, the step draws u) under the treatments of t but `skip` — or under none
 * when t is NULL: a counterfactual. */
static bool redraw(pe_sim_t *sim, const sim_session_t *s, const pe_sim_rng_t *r,
                   const double u[SIM_NSTEPS], const double base_prob[SIM_NSTEPS],
                   const sim_treatment_t *t, size_t skip, const double *pay, sim_outcome_t *out)
{
    sim_session_t cf = *s;
    pe_sim_rng_t rcf = *r;
    double prob[SIM_NSTEPS];
    int64_t t_cf;
    memcpy(prob, base_prob, sizeof prob);
    cf.price = 1.0;
    if (t)
        apply_treatment(t, skip, prob, &cf.price);
    cf.reached = 0;
    for (int k = 0; k < SIM_NSTEPS && u[k] < prob[k]; k++)
        cf.reached = (uint8_t)(k + 1);
    sim->scratch.n = 0;
    if (!draw_journey(sim, &rcf, &cf, pay, &sim->scratch, &t_cf))
        return false;
    outcome_of(sim, &cf, out);
    return true;
}

/* Plans session i of day d: draws everything, appends its events to evs. Returns false on
 * ENOMEM. *emitted tells whether it survived the cut-off. */
static bool plan_session(pe_sim_t *sim, unsigned d, uint32_t i, pe_sim_rng_t *day_rng,
                         sim_session_t *s, evbuf_t *evs, bool *emitted)
{
    const pe_sim_scenario_t *sc = sim->sc;
    memset(s, 0, sizeof *s);
    s->index = i;
    s->price = 1.0;
    *emitted = false;

    /* Who: a returning visitor (their device mostly, their country) or a new one. These draws
     * come from the day stream, in a fixed number per session. */
    bool returning = sim->nvisitors > 0 && pe_sim_rng_bernoulli(day_rng, sc->returning_share);
    uint64_t pick = pe_sim_rng_below(day_rng, sim->nvisitors ? sim->nvisitors : 1);
    size_t device = pe_sim_rng_pick(day_rng, sc->devices, SIM_NDEVICES);
    size_t country = pe_sim_rng_pick(day_rng, sc->countries, SIM_NCOUNTRIES);
    bool same_device = pe_sim_rng_bernoulli(day_rng, 0.85);
    bool new_visitor = !returning;
    if (returning) {
        const visitor_t *v = &sim->visitors[pick];
        s->visitor = (uint32_t)pick;
        s->device = same_device ? v->device : (uint8_t)device;
        s->country = v->country;
        s->customer = v->customer;
    } else {
        s->visitor = (uint32_t)sim->nvisitors; /* added below if the session is emitted */
        s->device = (uint8_t)device;
        s->country = (uint8_t)country;
    }

    pe_sim_rng_t r;
    pe_sim_rng_stream(&r, sim->p.seed, d, i);
    double u[SIM_NSTEPS];
    for (int k = 0; k < SIM_NSTEPS; k++)
        u[k] = pe_sim_rng_uniform(&r);
    s->source = (uint8_t)pe_sim_rng_pick(&r, sc->sources, SIM_NSOURCES);
    const sim_source_t *src = &sim_sources[s->source];
    double cu = pe_sim_rng_uniform(&r);
    s->campaign = src->campaigns[0] ? (src->campaigns[1] && cu >= 0.6 ? 1 : 0) : 255;

    /* What the scenario says for this segment. */
    sim_segment_key_t key = {s->device,
                             s->country,
                             s->source,
                             new_visitor ? SIM_VISITOR_NEW : SIM_VISITOR_RETURNING,
                             s->campaign == 255 ? NULL : src->campaigns[s->campaign],
                             sim->first_day_num + (int32_t)d};
    double prob[SIM_NSTEPS], pay[SIM_NPAYMENTS];
    memcpy(prob, sc->funnel, sizeof prob);
    memcpy(pay, sc->payments, sizeof pay);
    bool matched[PE_SIM_SCENARIO_MAX_OVERRIDES];
    for (size_t o = 0; o < sc->noverrides; o++) {
        const sim_override_t *ov = &sc->overrides[o];
        matched[o] = sim_override_matches(ov, &key);
        if (!matched[o])
            continue;
        if (ov->step >= 0 && ov->probability >= 0)
            prob[ov->step] = ov->probability;
        else if (ov->step >= 0) {
            double drop = (1.0 - prob[ov->step]) * ov->drop_multiplier;
            prob[ov->step] = 1.0 - (drop > 1.0 ? 1.0 : drop);
        }
        if (ov->has_payments)
            for (int m = 0; m < SIM_NPAYMENTS; m++)
                if (ov->payments[m] >= 0)
                    pay[m] = ov->payments[m];
    }
    bool any_pay = false;
    for (int m = 0; m < SIM_NPAYMENTS; m++)
        any_pay |= pay[m] > 0;
    if (!any_pay) /* overrides together left nothing: the scenario's own weights apply */
        memcpy(pay, sc->payments, sizeof pay);

    /* The closed loop's treatments of this unit (none without hooks). */
    sim_unit_t unit = {.key = &key, .day = d};
    sim_treatment_t treatment = {.n = 0};
    if (sim->hooks.treat) {
        hex_id(unit.unit, sizeof unit.unit, 'a', sim->p.seed, s->visitor, 0);
        hex_id(unit.session_id, sizeof unit.session_id, 's', sim->p.seed, d, s->index);
        sim->hooks.treat(sim->hooks.ctx, &unit, &treatment);
        if (treatment.n > SIM_MAX_TREATMENTS)
            treatment.n = SIM_MAX_TREATMENTS;
    }
    double base_prob[SIM_NSTEPS];
    memcpy(base_prob, prob, sizeof prob);
    if (treatment.n)
        apply_treatment(&treatment, SIZE_MAX, prob, &s->price);
    for (int k = 0; k < SIM_NSTEPS && u[k] < prob[k]; k++)
        s->reached = (uint8_t)(k + 1);

    /* Each treatment's counterfactual (the same draws with every other treatment), and the
     * baseline (the same draws with none). */
    sim_outcome_t actual, without[SIM_MAX_TREATMENTS], baseline;
    if (sim->hooks.observe) {
        for (size_t x = 0; x < treatment.n; x++)
            if (!redraw(sim, s, &r, u, base_prob, &treatment, x, pay, &without[x]))
                return false;
        if (treatment.n == 1)
            baseline = without[0];
        else if (treatment.n > 1 && !redraw(sim, s, &r, u, base_prob, NULL, 0, pay, &baseline))
            return false;
    }

    /* The journey, as offsets from the session start. */
    size_t first = evs->n;
    int64_t t = 0;
    if (!draw_journey(sim, &r, s, pay, evs, &t))
        return false;

    /* When: an hour of the local day by the daily profile, kept inside the day. */
    size_t hour = pe_sim_rng_pick(&r, HOURS, 24);
    double within = pe_sim_rng_uniform(&r);
    int64_t day_start_ms = sim->day_starts[d] / US_PER_MS;
    int64_t day_len_ms = (sim->day_starts[d + 1] - sim->day_starts[d]) / US_PER_MS;
    int64_t offset = (int64_t)(((double)hour + within) / 24.0 * (double)day_len_ms);
    if (offset + t >= day_len_ms)
        offset = day_len_ms - t - 1000;
    int64_t start_ms = day_start_ms + offset;
    s->ev_off = first;
    s->nev = (uint16_t)(evs->n - first);
    for (size_t e = first; e < evs->n; e++)
        evs->ev[e].ts_ms += start_ms;

    if (sim->p.cutoff_us && (start_ms + t) * US_PER_MS > sim->p.cutoff_us) {
        evs->n = first; /* never happened */
        sim->sessions_cut++;
        return true;
    }
    *emitted = true;
    if (sim->hooks.observe) {
        outcome_of(sim, s, &actual);
        if (treatment.n == 0)
            baseline = actual;
        sim->hooks.observe(sim->hooks.ctx, &unit, start_ms * US_PER_MS, &actual, without,
                           &baseline);
    }

    /* Commit the session to the visitor pool and the truth. */
    if (new_visitor && !visitor_add(sim, s->device, s->country))
        return false;
    visitor_t *v = &sim->visitors[s->visitor];
    bool first_order = false;
    if (s->reached == SIM_NSTEPS && v->customer == 0) {
        v->customer = ++sim->ncustomers;
        s->new_customer = v->customer;
        first_order = true;
    }
    day_truth_t *dt = &sim->truth[d];
    if (v->last_day != (int32_t)d) {
        v->last_day = (int32_t)d;
        dt->visitors++;
    }
    if (new_visitor) {
        dt->new_visitors++;
        sim->visitors_total++;
    }
    count_session(&dt->total, s, first_order);
    count_session(&dt->device[s->device], s, first_order);
    count_session(&dt->country[s->country], s, first_order);
    count_session(&dt->source[s->source], s, first_order);
    count_session(&sim->total, s, first_order);
    for (size_t o = 0; o < sc->noverrides; o++)
        if (matched[o])
            count_session(&sim->override_truth[o], s, first_order);
    for (size_t e = first; e < evs->n; e++)
        if (evs->ev[e].kind == K_PRODUCT) {
            dt->total.product_views++;
            dt->device[s->device].product_views++;
            dt->country[s->country].product_views++;
            dt->source[s->source].product_views++;
            sim->total.product_views++;
            for (size_t o = 0; o < sc->noverrides; o++)
                if (matched[o])
                    sim->override_truth[o].product_views++;
        }
    return true;
}

static sim_day_t *plan_day(pe_sim_t *sim, unsigned d)
{
    pe_sim_rng_t day_rng;
    pe_sim_rng_stream(&day_rng, sim->p.seed, d, DAY_STREAM);
    int dow = ((sim->first_day_num + (int)d) % 7 + 7 + 3) % 7; /* 1970-01-01 was a Thursday */
    double mean = 0;
    for (int k = 0; k < 7; k++)
        mean += WEEKDAYS[k] / 7;
    double expected =
        sim->p.sessions_per_day * WEEKDAYS[dow] / mean * exp(0.05 * pe_sim_rng_normal(&day_rng));
    size_t n = (size_t)llround(expected);

    sim_day_t *day = calloc(1, sizeof *day);
    evbuf_t evs = {NULL, 0, 0};
    if (!day)
        return NULL;
    day->d = d;
    day->sessions = n ? calloc(n, sizeof *day->sessions) : NULL;
    if (n && !day->sessions)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        bool emitted;
        if (!plan_session(sim, d, (uint32_t)i, &day_rng, &day->sessions[day->n], &evs, &emitted))
            goto nomem;
        if (emitted)
            day->n++;
    }
    day->events = evs.ev;
    day->nev = evs.n;
    return day;
nomem:
    free(evs.ev);
    day_free(day);
    return NULL;
}

/* ---- rendering (workers) -----------------------------------------------------------------------
 */

/* "/collections/<slug>": the category in lower case, a run of anything but ASCII letters and
 * digits as one "-" ("Home & Garden" → "/collections/home-garden"). */
static void collection_path(const char *category, char *buf, size_t buflen)
{
    static const char prefix[] = "/collections/";
    size_t n = 0;
    if (buflen < sizeof prefix + 1) {
        if (buflen)
            buf[0] = '\0';
        return;
    }
    memcpy(buf, prefix, sizeof prefix - 1);
    n = sizeof prefix - 1;
    bool dash = false;
    for (const char *c = category; *c && n + 2 < buflen; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            if (dash && n > sizeof prefix - 1)
                buf[n++] = '-';
            buf[n++] = ch;
            dash = false;
        } else {
            dash = true;
        }
    }
    buf[n] = '\0';
}

static const char *page_path(const pe_sim_t *sim, const sim_session_t *s, const sim_ev_t *e,
                             char *buf, size_t buflen)
{
    switch ((kind_t)e->kind) {
    case K_PAGE:
        if (s->landing == 0)
            return "/";
        if (s->landing == 1) {
            snprintf(buf, buflen, "/products/%s", sim->products[e->product].sku);
            return buf;
        }
        collection_path(sim->products[e->product].category, buf, buflen);
        return buf;
    case K_PRODUCT:
    case K_ADD:
        snprintf(buf, buflen, "/products/%s", sim->products[e->product].sku);
        return buf;
    case K_CART:
        return "/cart";
    case K_CHECKOUT:
        return "/checkout";
    case K_SHIPPING:
        return "/checkout/shipping";
    case K_PAYMENT:
        return "/checkout/payment";
    case K_ORDER:
        return "/checkout/confirmation";
    }
    return "/";
}

/* Rendering allocates much less when keys are constants (cJSON's "CS" items, never copied) and
 * values that outlive the batch (names, catalogue fields, the dimension tables) are references:
 * every key here is a literal, and every add_ref value lives as long as the generator. */
static bool attach(cJSON *o, const char *k, cJSON *item)
{
    if (item && cJSON_AddItemToObjectCS(o, k, item))
        return true;
    cJSON_Delete(item);
    return false;
}

static bool add_str(cJSON *o, const char *k, const char *v)
{
    return attach(o, k, cJSON_CreateString(v));
}

static bool add_ref(cJSON *o, const char *k, const char *v)
{
    return attach(o, k, cJSON_CreateStringReference(v));
}

static cJSON *add_obj(cJSON *o, const char *k)
{
    cJSON *child = cJSON_CreateObject();
    return attach(o, k, child) ? child : NULL;
}

static bool add_num(cJSON *o, const char *k, double v)
{
    return attach(o, k, cJSON_CreateNumber(v));
}

static bool add_money(cJSON *o, const char *k, int64_t cents)
{
    return add_num(o, k, (double)cents / 100.0);
}

static bool add_product_fields(const pe_sim_t *sim, cJSON *o, uint16_t idx)
{
    const sim_product_t *p = &sim->products[idx];
    return add_ref(o, "productId", p->sku) && add_ref(o, "name", p->name) &&
           add_ref(o, "category", p->category);
}

static bool add_properties(const pe_sim_t *sim, const sim_session_t *s, const sim_ev_t *e,
                           unsigned d, cJSON *props)
{
    const char *ccy = sim->currency;
    unsigned items = 0;
    for (int b = 0; b < s->nbasket; b++)
        items += s->basket[b].qty;
    switch ((kind_t)e->kind) {
    case K_PAGE:
        return true;
    case K_PRODUCT:
        return add_product_fields(sim, props, e->product) &&
               add_money(props, "price", paid_cents(sim, s, e->product)) &&
               add_ref(props, "currency", ccy);
    case K_ADD:
        return add_product_fields(sim, props, e->product) && add_num(props, "quantity", e->qty) &&
               add_money(props, "price", paid_cents(sim, s, e->product)) &&
               add_ref(props, "currency", ccy);
    case K_CART:
    case K_CHECKOUT:
        return add_money(props, "cartValue", s->subtotal_cents) &&
               add_ref(props, "currency", ccy) && add_num(props, "itemCount", items);
    case K_SHIPPING:
        return add_ref(props, "shippingMethod", SHIPPING_METHODS[s->shipping]) &&
               add_money(props, "shippingCost", s->shipping_cents) &&
               add_ref(props, "currency", ccy) &&
               add_ref(props, "country", sim_country_codes[s->country]);
    case K_PAYMENT:
        return add_ref(props, "paymentMethod", sim_payment_names[s->payment]);
    case K_ORDER: {
        char order_id[40];
        hex_id(order_id, sizeof order_id, 'o', sim->p.seed, d, s->index);
        cJSON *arr = cJSON_CreateArray();
        if (!attach(props, "items", arr))
            return false;
        for (int b = 0; b < s->nbasket; b++) {
            cJSON *it = cJSON_CreateObject();
            if (!it || !cJSON_AddItemToArray(arr, it)) {
                cJSON_Delete(it);
                return false;
            }
            if (!add_ref(it, "productId", sim->products[s->basket[b].product].sku) ||
                !add_num(it, "quantity", s->basket[b].qty) ||
                !add_money(it, "price", paid_cents(sim, s, s->basket[b].product)) ||
                !add_ref(it, "name", sim->products[s->basket[b].product].name) ||
                !add_ref(it, "category", sim->products[s->basket[b].product].category))
                return false;
        }
        return add_str(props, "orderId", order_id) &&
               add_money(props, "value", s->subtotal_cents + s->shipping_cents) &&
               add_ref(props, "currency", ccy) && add_money(props, "shipping", s->shipping_cents);
    }
    }
    return false;
}

static cJSON *render_event(const pe_sim_t *sim, unsigned d, const sim_session_t *s, size_t k,
                           const sim_ev_t *e)
{
    char id[40], session_id[40], anon[40], user[40], ts[40], path[160], url[320];
    const sim_source_t *src = &sim_sources[s->source];
    pe_sim_uuid(sim->p.seed, ((uint64_t)d << 32) | s->index, k, id);
    hex_id(session_id, sizeof session_id, 's', sim->p.seed, d, s->index);
    hex_id(anon, sizeof anon, 'a', sim->p.seed, s->visitor, 0);
    pe_time_format_rfc3339(e->ts_ms * US_PER_MS, ts, sizeof ts);
    uint32_t customer = s->customer ? s->customer : e->kind == K_ORDER ? s->new_customer : 0;
    if (customer)
        hex_id(user, sizeof user, 'u', sim->p.seed, customer, 0);
    const char *p = page_path(sim, s, e, path, sizeof path);
    snprintf(url, sizeof url, "https://%s%s", sim->host, p);

    cJSON *o = cJSON_CreateObject(), *ctx = NULL, *page = NULL, *props = NULL;
    bool ok = o && add_str(o, "eventId", id) && add_ref(o, "name", KIND_NAMES[e->kind]) &&
              add_str(o, "timestamp", ts) && add_str(o, "sessionId", session_id) &&
              add_str(o, "anonymousId", anon) && (!customer || add_str(o, "userId", user));
    ok = ok && (ctx = add_obj(o, "context")) != NULL && (page = add_obj(ctx, "page")) != NULL &&
         add_str(page, "url", url) && add_str(page, "path", p) &&
         add_ref(page, "referrer", k == 0 ? src->referrer : "") &&
         add_ref(page, "title",
                 e->kind == K_PRODUCT ? sim->products[e->product].name : "Simulated Store");
    if (ok && src->utm_source) {
        cJSON *utm = add_obj(ctx, "utm");
        ok = utm && add_ref(utm, "source", src->utm_source) &&
             add_ref(utm, "medium", src->utm_medium) &&
             (s->campaign == 255 || add_ref(utm, "campaign", src->campaigns[s->campaign]));
    }
    if (ok) {
        cJSON *dev = add_obj(ctx, "device");
        ok = dev && add_ref(dev, "type", sim_device_names[s->device]) &&
             add_ref(ctx, "userAgent", USER_AGENTS[s->device]) &&
             add_ref(ctx, "locale", sim_country_locales[s->country]);
    }
    ok = ok && (props = add_obj(o, "properties")) != NULL && add_properties(sim, s, e, d, props);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void set_error(pe_sim_t *sim, int rc)
{
    pthread_mutex_lock(&sim->mu);
    if (!sim->error)
        sim->error = rc;
    pthread_cond_broadcast(&sim->work);
    pthread_cond_broadcast(&sim->room);
    pthread_mutex_unlock(&sim->mu);
}

typedef struct {
    pe_sim_t *sim;
    unsigned index;
    cJSON *batch;
    size_t count;
} worker_t;

static int flush(worker_t *w)
{
    if (!w->count)
        return 0;
    int rc = w->sim->deliver(w->sim->ctx, w->index, w->batch, w->count);
    cJSON_Delete(w->batch);
    w->batch = NULL;
    w->count = 0;
    return rc;
}

static int render_session(worker_t *w, const sim_day_t *day, const sim_session_t *s)
{
    if (w->count + s->nev > BATCH_EVENTS) {
        int rc = flush(w);
        if (rc != 0)
            return rc;
    }
    if (!w->batch && !(w->batch = cJSON_CreateArray()))
        return PE_ENOMEM;
    for (size_t k = 0; k < s->nev; k++) {
        cJSON *e = render_event(w->sim, day->d, s, k, &day->events[s->ev_off + k]);
        if (!e || !cJSON_AddItemToArray(w->batch, e)) {
            cJSON_Delete(e);
            return PE_ENOMEM;
        }
        w->count++;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    pe_sim_t *sim = w->sim;
    int rc = 0;
    pthread_mutex_lock(&sim->mu);
    for (;;) {
        if (sim->error)
            break;
        sim_day_t *day = sim->queue;
        while (day && day->taken >= day->n)
            day = day->next;
        if (!day) {
            if (sim->planning_done)
                break;
            pthread_cond_wait(&sim->work, &sim->mu);
            continue;
        }
        size_t from = day->taken, to = from + CHUNK < day->n ? from + CHUNK : day->n;
        day->taken = to;
        pthread_mutex_unlock(&sim->mu);
        for (size_t i = from; i < to && rc == 0; i++)
            rc = render_session(w, day, &day->sessions[i]);
        if (rc != 0) {
            set_error(sim, rc);
            pthread_mutex_lock(&sim->mu);
            break;
        }
        pthread_mutex_lock(&sim->mu);
        day->finished += to - from;
        if (day->finished == day->n) {
            sim_day_t **pp = &sim->queue;
            while (*pp != day)
                pp = &(*pp)->next;
            *pp = day->next;
            sim->queued--;
            day_free(day);
            pthread_cond_broadcast(&sim->room);
        }
    }
    pthread_mutex_unlock(&sim->mu);
    if (rc == 0 && !sim->error) {
        rc = flush(w);
        if (rc != 0)
            set_error(sim, rc);
    }
    cJSON_Delete(w->batch);
    w->batch = NULL;
    return NULL;
}

int sim_run_days(pe_sim_t *sim, unsigned first, unsigned count, unsigned threads,
                 pe_sim_deliver_fn deliver, void *ctx)
{
    if (first != sim->next_day || count > sim->p.days - first || threads < 1 || threads > 64 ||
        !deliver || sim->error)
        return PE_EINVAL;
    sim->next_day = first + count;
    sim->deliver = deliver;
    sim->ctx = ctx;
    sim->planning_done = false;
    pthread_t tids[64];
    worker_t workers[64];
    unsigned started = 0;
    for (; started < threads; started++) {
        workers[started] = (worker_t){.sim = sim, .index = started, .batch = NULL, .count = 0};
        if (pthread_create(&tids[started], NULL, worker_main, &workers[started]) != 0) {
            set_error(sim, PE_ENOMEM);
            break;
        }
    }
    for (unsigned d = first; d < first + count; d++) {
        sim_day_t *day = plan_day(sim, d);
        if (!day) {
            set_error(sim, PE_ENOMEM);
            break;
        }
        pthread_mutex_lock(&sim->mu);
        while (sim->queued >= QUEUE_DAYS && !sim->error)
            pthread_cond_wait(&sim->room, &sim->mu);
        bool stop = sim->error != 0;
        if (!stop && day->n > 0) {
            sim_day_t **pp = &sim->queue;
            while (*pp)
                pp = &(*pp)->next;
            *pp = day;
            sim->queued++;
            day = NULL;
            pthread_cond_broadcast(&sim->work);
        }
        pthread_mutex_unlock(&sim->mu);
        day_free(day);
        if (stop)
            break;
    }
    pthread_mutex_lock(&sim->mu);
    sim->planning_done = true;
    pthread_cond_broadcast(&sim->work);
    pthread_mutex_unlock(&sim->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    return sim->error;
}

int pe_sim_run(pe_sim_t *sim, unsigned threads, pe_sim_deliver_fn deliver, void *ctx)
{
    return sim_run_days(sim, 0, sim->p.days, threads, deliver, ctx);
}

void sim_set_hooks(pe_sim_t *sim, const sim_hooks_t *hooks)
{
    sim->hooks = *hooks;
}

/* ---- truth -------------------------------------------------------------------------------------
 */

static cJSON *cents_json(int64_t cents)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "", (long long)llabs(cents / 100),
             (long long)llabs(cents % 100));
    return cJSON_CreateRaw(buf);
}

static bool put(cJSON *o, const char *k, uint64_t v)
{
    return cJSON_AddNumberToObject(o, k, (double)v) != NULL;
}

static bool counts_into(cJSON *o, const counts_t *c)
{
    bool ok = put(o, "sessions", c->sessions) && put(o, "events", c->events) &&
              put(o, "productViews", c->product_views);
    for (int k = 0; ok && k < SIM_NSTEPS; k++)
        ok = put(o, sim_step_names[k], c->steps[k]);
    ok = ok && put(o, "orders", c->orders) && put(o, "units", c->units);
    cJSON *rev = ok ? cents_json((int64_t)c->revenue_cents) : NULL;
    ok = ok && rev && cJSON_AddItemToObject(o, "revenue", rev);
    if (!ok && rev && !rev->string)
        cJSON_Delete(rev);
    ok = ok && put(o, "ordersNewCustomers", c->orders_new_customers) &&
         put(o, "ordersReturningCustomers", c->orders_returning_customers);
    cJSON *pay = ok ? cJSON_AddObjectToObject(o, "paymentMethods") : NULL;
    ok = ok && pay;
    for (int m = 0; ok && m < SIM_NPAYMENTS; m++)
        ok = put(pay, sim_payment_names[m], c->payments[m]);
    return ok;
}

static cJSON *counts_json(const counts_t *c)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !counts_into(o, c)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool add_child(cJSON *parent, const char *k, cJSON *v)
{
    if (v && cJSON_AddItemToObject(parent, k, v))
        return true;
    cJSON_Delete(v);
    return false;
}

static cJSON *breakdown(const counts_t *c, size_t n, const char *(*name)(size_t))
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++) {
        if (c[i].sessions == 0)
            continue;
        if (!add_child(o, name(i), counts_json(&c[i]))) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static const char *device_name(size_t i)
{
    return sim_device_names[i];
}
static const char *country_name(size_t i)
{
    return sim_country_codes[i];
}
static const char *source_name(size_t i)
{
    return sim_sources[i].utm_source ? sim_sources[i].utm_source : "(direct)";
}

cJSON *pe_sim_truth_json(const pe_sim_t *sim)
{
    char seed[24], date[11], ts[40];
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)sim->p.seed);
    civil_from_days(sim->first_day_num + (int)sim->p.days - 1, date);
    bool ok = put(j, "version", 1) && add_str(j, "seed", seed) &&
              add_str(j, "from", sim->first_day) && add_str(j, "to", date) &&
              put(j, "dayCount", sim->p.days) &&
              put(j, "sessionsPerDay", sim->p.sessions_per_day) &&
              add_str(j, "currency", sim->currency) &&
              add_child(j, "scenario", pe_sim_scenario_json(sim->sc));
    cJSON *totals = ok ? counts_json(&sim->total) : NULL;
    ok = ok && add_child(j, "totals", totals) && put(totals, "visitors", sim->visitors_total) &&
         put(totals, "customers", sim->ncustomers) && put(j, "sessionsCut", sim->sessions_cut);
    cJSON *days = ok ? cJSON_AddArrayToObject(j, "days") : NULL;
    ok = ok && days;
    for (unsigned d = 0; ok && d < sim->p.days; d++) {
        const day_truth_t *dt = &sim->truth[d];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(days, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        civil_from_days(sim->first_day_num + (int)d, date);
        ok = add_str(o, "date", date);
        pe_time_format_rfc3339(sim->day_starts[d], ts, sizeof ts);
        ok = ok && add_str(o, "start", ts);
        pe_time_format_rfc3339(sim->day_starts[d + 1], ts, sizeof ts);
        ok = ok && add_str(o, "end", ts) && put(o, "visitors", dt->visitors) &&
             put(o, "newVisitors", dt->new_visitors) && counts_into(o, &dt->total) &&
             add_child(o, "byDevice", breakdown(dt->device, SIM_NDEVICES, device_name)) &&
             add_child(o, "byCountry", breakdown(dt->country, SIM_NCOUNTRIES, country_name)) &&
             add_child(o, "bySource", breakdown(dt->source, SIM_NSOURCES, source_name));
    }
    cJSON *ovs = ok ? cJSON_AddArrayToObject(j, "overrides") : NULL;
    ok = ok && ovs;
    for (size_t i = 0; ok && i < sim->sc->noverrides; i++) {
        cJSON *o = counts_json(&sim->override_truth[i]);
        ok = o && cJSON_AddItemToArray(ovs, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        /* The dates an override is limited to, as in the scenario: its counts cover only the
         * sessions of those days. */
        const sim_override_t *ov = &sim->sc->overrides[i];
        ok = put(o, "index", i);
        if (ok && ov->has_from) {
            civil_from_days(ov->from, date);
            ok = add_str(o, "from", date);
        }
        if (ok && ov->has_to) {
            civil_from_days(ov->to, date);
            ok = add_str(o, "to", date);
        }
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

void pe_sim_totals(const pe_sim_t *sim, pe_sim_totals_t *out)
{
    out->sessions = sim->total.sessions;
    out->events = sim->total.events;
    out->orders = sim->total.orders;
    out->revenue_cents = sim->total.revenue_cents;
}
