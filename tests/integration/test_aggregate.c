/*
 * test_aggregate.c — the aggregation job against a private database: exact numbers for a small
 * hand-written journey set (store-local day cut in a non-UTC zone, the ordered funnel, orders on
 * the day they happened, new vs returning customers, weekly and monthly distinct counts that are
 * not sums of days), new vs returning visitors and the UTM campaign of a session (a late
 * session that started first turns its visitor's former first one into a returning one), a late
 * event for a past day, a rerun that changes nothing, a row committed
 * after a run although stamped before it, and a property test: the same generated events in
 * random arrival orders and batches, aggregated incrementally between batches, leave exactly
 * the tables a --full recompute leaves (SQL EXCEPT both ways).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "pe/aggregate.h"
#include "pe/collector.h"
#include "pe/db.h"
#include "pe/tenancy.h"
#include "pe_test.h"

static pe_test_fixture_t fx; /* no server: everything here runs in-process */

static const char *const TABLES[] = {
    "agg_sessions",       "agg_session_products", "agg_orders",        "agg_daily",
    "agg_daily_segments", "agg_funnel_hourly",    "agg_product_daily", "agg_category_daily",
    "agg_weekly",         "agg_monthly",          "agg_customer_days", "agg_funnel_hourly_segments",
    "agg_exposures",
};

/* A store named name in timezone tz; its id into id (the tests here need no keys). */
static void make_store(const char *name, const char *tz, char *id)
{
    pe_test_tenant_t t;
    pe_test_tenant_make(&t, fx.pool, name, tz, "EUR", NULL, NULL);
    snprintf(id, PE_ID_LEN, "%s", t.id);
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sql(const char *fmt, ...)
{
    pe_buf_t b = PE_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    char tmp[8192];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    pe_buf_puts(&b, tmp);
    pe_db_conn_t *conn = NULL;
    assert_int_equal(pe_db_acquire(fx.pool, 5000, &conn), 0);
    int rc = pe_db_exec(conn, b.data, 0, NULL, NULL);
    if (rc != 0)
        fail_msg("%s: %s", b.data, pe_db_conn_error(conn));
    pe_db_release(fx.pool, conn);
    pe_buf_free(&b);
}

/* The row of a table as text, "" when there is none. */
static void expect_row(const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void expect_row(const char *expected, const char *fmt, ...)
{
    char q[4096], wrapped[4400], got[1024] = "(no row)";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    /* the row as "a|b|c" (the values here hold no commas, quotes or parentheses) */
    snprintf(wrapped, sizeof wrapped,
             "SELECT translate(trim(both '()' FROM r::text), ',', '|') FROM (%s) r", q);
    char *v = pe_test_sql(fx.conninfo, wrapped);
    if (v)
        snprintf(got, sizeof got, "%s", v);
    free(v);
    if (strcmp(got, expected) != 0)
        fail_msg("%s\n  expected %s\n  got      %s", q, expected, got);
}

static void aggregate(const char *store_id, bool full)
{
    pe_aggregate_options_t opt = {.store_id = store_id, .full = full, .wait = true};
    pe_aggregate_report_t rep;
    char err[1024];
    int rc = pe_aggregate_run(fx.pool, &opt, &rep, err, sizeof err);
    if (rc != 0)
        fail_msg("aggregate: %s", err);
}

/* One event; ctx and props are JSON text (or NULL); recv is an SQL expression for received_at;
 * campaign is its utm_campaign (or NULL). */
static void event_campaign(const char *store, const char *session, const char *anon,
                           const char *user, const char *name, int step, const char *at,
                           const char *device, const char *utm, const char *campaign,
                           const char *ctx, const char *props, const char *recv)
{
    char u[80] = "NULL", d[40] = "NULL", s[80] = "NULL", k[80] = "NULL", c[600] = "NULL";
    if (user)
        snprintf(u, sizeof u, "'%s'", user);
    if (device)
        snprintf(d, sizeof d, "'%s'", device);
    if (utm)
        snprintf(s, sizeof s, "'%s'", utm);
    if (campaign)
        snprintf(k, sizeof k, "'%s'", campaign);
    if (ctx)
        snprintf(c, sizeof c, "'%s'", ctx);
    sql("INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step, session_id,"
        " anonymous_id, user_id, client_ts, received_at, device_type, utm_source, utm_campaign,"
        " context, properties) VALUES ('%s', '%s', gen_random_uuid(), '%s', %d, '%s', '%s', %s,"
        " '%s', %s, %s, %s, %s, %s, '%s')",
        store, at, name, step, session, anon, u, at, recv ? recv : "now()", d, s, k, c,
        props ? props : "{}");
}

/* The same without a campaign. */
static void event(const char *store, const char *session, const char *anon, const char *user,
                  const char *name, int step, const char *at, const char *device, const char *utm,
                  const char *ctx, const char *props, const char *recv)
{
    event_campaign(store, session, anon, user, name, step, at, device, utm, NULL, ctx, props, recv);
}

/* A text digest of every aggregate table of a store (to see that a rerun changed nothing). */
static char *digest(const char *store)
{
    pe_buf_t b = PE_BUF_INIT;
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLES); i++) {
        char *v = pe_test_sqlf(fx.conninfo,
                               "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                               "  FROM %s t WHERE store_id = '%s'",
                               TABLES[i], store);
        pe_buf_printf(&b, "%s=%s;", TABLES[i], v ? v : "");
        free(v);
    }
    return b.data; /* the buffer's bytes, malloc'ed */
}

static int setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_INFO, 4);
    return 0;
}

#define DAILY_COLS                                                                                 \
    "sessions, visitors, reach_cart, reach_checkout, reach_shipping, reach_payment,"               \
    " reach_confirmation, converted_sessions, product_views, cart_adds, orders, revenue::float8,"  \
    " units, customers, new_customers, returning_customers"

static void test_exact_numbers(void **state)
{
    (void)state;
    char s[PE_ID_LEN];
    make_store("New York shop", "America/New_York", s); /* June: UTC-4 */
    const char *loc_us = "{\"locale\":\"en-US\"}";
    /* A: starts 2025-06-09 23:30 local (03:30Z), reaches every step in order, orders at 00:10
     * local on the 10th. Customer u1. */
    event(s, "A", "anonA", NULL, "storefront.page.viewed", 0, "2025-06-10T03:30:00Z", "mobile",
          "Google", loc_us, NULL, NULL);
    event_campaign(s, "A", "anonA", NULL, "storefront.product.viewed", 0, "2025-06-10T03:31:00Z",
                   "mobile", NULL, "Summer-Sale", NULL,
                   "{\"productId\":\"p1\",\"category\":\"Shoes\"}", NULL);
    event_campaign(s, "A", "anonA", NULL, "storefront.page.viewed", 0, "2025-06-10T03:32:00Z",
                   "mobile", NULL, "other", NULL, NULL, NULL);
    event(s, "A", "anonA", NULL, "storefront.cart.item_added", 1, "2025-06-10T03:35:00Z", "mobile",
          NULL, NULL, "{\"productId\":\"p1\",\"quantity\":3,\"price\":10,\"currency\":\"EUR\"}",
          NULL);
    event(s, "A", "anonA", NULL, "checkout.session.started", 2, "2025-06-10T03:40:00Z", "mobile",
          NULL, NULL, "{\"cartValue\":30,\"currency\":\"EUR\"}", NULL);
    event(s, "A", "anonA", NULL, "checkout.shipping.submitted", 3, "2025-06-10T03:45:00Z", "mobile",
          NULL, NULL, "{\"shippingMethod\":\"dhl\"}", NULL);
    event(s, "A", "anonA", NULL, "checkout.payment.submitted", 4, "2025-06-10T03:50:00Z", "mobile",
          NULL, NULL, "{\"paymentMethod\":\"card\"}", NULL);
    event(s, "A", "anonA", "u1", "checkout.order.completed", 5, "2025-06-10T04:10:00Z", "mobile",
          NULL, NULL,
          "{\"orderId\":\"o1\",\"value\":30,\"currency\":\"EUR\",\"items\":[{\"productId\":\"p1\","
          "\"quantity\":3,\"price\":10,\"category\":\"Shoes\"}]}",
          NULL);
    /* B: 10:00 local on the 10th; checkout before cart, then shipping: the ordered funnel counts
     * the cart only. */
    event(s, "B", "anonB", NULL, "checkout.session.started", 2, "2025-06-10T14:01:00Z", "desktop",
          NULL, "{\"locale\":\"fr-FR\",\"page\":{\"referrer\":\"https://www.bing.com/q\"}}",
          "{\"cartValue\":5,\"currency\":\"EUR\"}", NULL);
    event(s, "B", "anonB", NULL, "storefront.cart.item_added", 1, "2025-06-10T14:02:00Z", "desktop",
          NULL, NULL, "{\"productId\":\"p2\",\"quantity\":1,\"price\":5,\"currency\":\"EUR\"}",
          NULL);
    event(s, "B", "anonB", NULL, "checkout.shipping.submitted", 3, "2025-06-10T14:03:00Z",
          "desktop", NULL, NULL, "{\"shippingMethod\":\"dhl\"}", NULL);
    /* C: visitor anonA again on the 11th, u1 orders again (a returning customer). */
    event(s, "C", "anonA", "u1", "checkout.order.completed", 5, "2025-06-11T16:10:00Z", "mobile",
          NULL, NULL,
          "{\"orderId\":\"o2\",\"value\":20,\"currency\":\"EUR\",\"items\":[{\"productId\":\"p2\","
          "\"quantity\":1,\"price\":20,\"category\":\"Hats\"}]}",
          NULL);

    aggregate(s, false); /* the first run of a store is a full one */
    expect_row("A|2025-06-09|23|mobile|US|google|5|1",
               "SELECT session_id, day, hour, device, country, source, reach, orders"
               "  FROM agg_sessions WHERE store_id = '%s' AND session_id = 'A'",
               s);
    expect_row("B|2025-06-10|desktop|FR|bing.com|1",
               "SELECT session_id, day, device, country, source, reach FROM agg_sessions"
               " WHERE store_id = '%s' AND session_id = 'B'",
               s);
    /* anonA's first session is A, C is a return; the first non-empty campaign, lower case */
    expect_row("A|new|summer-sale;B|new|;C|returning|",
               "SELECT string_agg(session_id || '|' || visitor_type || '|' || campaign, ';'"
               "                  ORDER BY session_id) FROM agg_sessions WHERE store_id = '%s'",
               s);
    /* sessions by start day, orders by their own local day */
    expect_row("1|1|1|1|1|1|1|1|1|1|0|0|0|0|0|0",
               "SELECT " DAILY_COLS " FROM agg_daily WHERE store_id = '%s' AND day = '2025-06-09'",
               s);
    expect_row("1|1|1|0|0|0|0|0|0|1|1|30|3|1|1|0",
               "SELECT " DAILY_COLS " FROM agg_daily WHERE store_id = '%s' AND day = '2025-06-10'",
               s);
    expect_row("1|1|0|0|0|0|0|1|0|0|1|20|1|1|0|1",
               "SELECT " DAILY_COLS " FROM agg_daily WHERE store_id = '%s' AND day = '2025-06-11'",
               s);
    expect_row("30|0|1",
               "SELECT aov::float8, conversion_rate::float8,"
               " cart_abandonment_rate::float8 FROM agg_daily"
               " WHERE store_id = '%s' AND day = '2025-06-10'",
               s);
    /* the week (Monday 2025-06-09) and the month: 2 visitors and 1 customer, not 3 and 2 */
    expect_row(
        "3|2|2|1|1|1|1|2|1|2|2|50|4|1|1|0",
        "SELECT " DAILY_COLS " FROM agg_weekly WHERE store_id = '%s' AND period = '2025-06-09'", s);
    expect_row("3|2|2|1|1|1|1|2|1|2|2|50|4|1|1|0",
               "SELECT " DAILY_COLS
               " FROM agg_monthly WHERE store_id = '%s' AND period = '2025-06-01'",
               s);
    expect_row("3|2", "SELECT sum(visitors), sum(customers) FROM agg_daily WHERE store_id = '%s'",
               s);
    expect_row("mobile|US|google|1|1|1",
               "SELECT device, country, source, sessions, reach_confirmation, converted_sessions"
               "  FROM agg_daily_segments WHERE store_id = '%s' AND day = '2025-06-09'",
               s);
    expect_row("23|1|1",
               "SELECT hour, sessions, reach_confirmation FROM agg_funnel_hourly"
               " WHERE store_id = '%s' AND day = '2025-06-09'",
               s);
    /* every subset of the filters, the other columns '' (0013_funnel_hourly_segments.sql) */
    expect_row("7",
               "SELECT count(*) FROM agg_funnel_hourly_segments"
               " WHERE store_id = '%s' AND day = '2025-06-09' AND hour = 23 AND sessions = 1"
               "   AND reach_confirmation = 1",
               s);
    expect_row("5|mobile|t|google|23|1|1|1",
               "SELECT dims, device, country = '', source, hour, sessions, reach_cart,"
               " reach_confirmation FROM agg_funnel_hourly_segments"
               " WHERE store_id = '%s' AND day = '2025-06-09' AND dims = 5",
               s);
    expect_row("6|desktop|FR|t|10|1|1|0",
               "SELECT dims, device, country, source = '', hour, sessions, reach_cart,"
               " reach_checkout FROM agg_funnel_hourly_segments"
               " WHERE store_id = '%s' AND day = '2025-06-10' AND dims = 6",
               s);
    expect_row("p1|Shoes|0|0|1|3|30",
               "SELECT product_id, category, views, cart_adds, purchases, units, revenue::float8"
               "  FROM agg_product_daily WHERE store_id = '%s' AND day = '2025-06-10'",
               s);
    expect_row("Shoes|1|0|0|0|0",
               "SELECT category, views, cart_adds, purchases, units,"
               " revenue::float8 FROM agg_category_daily"
               " WHERE store_id = '%s' AND day = '2025-06-09'",
               s);

    /* a rerun with nothing new changes nothing */
    char *before = digest(s);
    aggregate(s, false);
    char *after = digest(s);
    assert_string_equal(before, after);
    free(after);
    free(before);

    /* a late session for a past day: u1's first order moves to the 9th, so on the 10th u1 is
     * a returning customer now; the week still has one (new) customer */
    event(s, "D", "anonD", "u1", "storefront.page.viewed", 0, "2025-06-09T19:00:00Z", "tablet",
          NULL, NULL, NULL, NULL);
    event(s, "D", "anonD", "u1", "checkout.order.completed", 5, "2025-06-09T20:00:00Z", "tablet",
          NULL, NULL,
          "{\"orderId\":\"o3\",\"value\":7.5,\"currency\":\"EUR\",\"items\":[{\"productId\":\"p3\","
          "\"quantity\":1,\"price\":7.5}]}",
          NULL);
    aggregate(s, false);
    expect_row("2|2|1|1|1|1|1|2|1|1|1|7.5|1|1|1|0",
               "SELECT " DAILY_COLS " FROM agg_daily WHERE store_id = '%s' AND day = '2025-06-09'",
               s);
    expect_row("1|0|1",
               "SELECT customers, new_customers, returning_customers FROM agg_daily"
               " WHERE store_id = '%s' AND day = '2025-06-10'",
               s);
    expect_row("4|3|3|1|1|0",
               "SELECT sessions, visitors, orders, customers, new_customers,"
               " returning_customers FROM agg_weekly"
               " WHERE store_id = '%s' AND period = '2025-06-09'",
               s);
    expect_row("uncategorized|0|1|1|1|7.5",
               "SELECT category, views, cart_adds, purchases, units, revenue::float8"
               "  FROM agg_category_daily WHERE store_id = '%s' AND day = '2025-06-09'"
               "   AND category = 'uncategorized'",
               s);
    /* a late session of anonB that started before B: it is anonB's first, B now a return */
    event_campaign(s, "E", "anonB", NULL, "storefront.page.viewed", 0, "2025-06-08T12:00:00Z",
                   "desktop", "news", "Win-Back", NULL, NULL, NULL);
    aggregate(s, false);
    expect_row("A|new|summer-sale;B|returning|;C|returning|;D|new|;E|new|win-back",
               "SELECT string_agg(session_id || '|' || visitor_type || '|' || campaign, ';'"
               "                  ORDER BY session_id) FROM agg_sessions WHERE store_id = '%s'",
               s);
    /* and a full recompute agrees with what the incremental runs left */
    before = digest(s);
    aggregate(s, true);
    after = digest(s);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* The hazard of invariant 3 of run.c: a row stamped before a run but committed after it. */
static void test_commit_after_run_is_not_missed(void **state)
{
    (void)state;
    char s[PE_ID_LEN];
    make_store("Slow commit shop", "UTC", s);
    event(s, "x1", "v1", NULL, "storefront.page.viewed", 0, "2025-06-02T10:00:00Z", NULL, NULL,
          NULL, NULL, NULL);
    aggregate(s, false);
    expect_row("1", "SELECT sessions FROM agg_daily WHERE store_id = '%s'", s);

    /* an open transaction holds a row stamped a minute ago (its request arrived then) */
    pe_db_conn_t *slow = NULL;
    assert_int_equal(pe_db_acquire(fx.pool, 5000, &slow), 0);
    assert_int_equal(pe_db_begin(slow), 0);
    char q[1024];
    snprintf(q, sizeof q,
             "INSERT INTO events (store_id, occurred_at, event_id, name, session_id, anonymous_id,"
             " client_ts, received_at, properties) VALUES ('%s', '2025-06-02T11:00:00Z',"
             " gen_random_uuid(), 'storefront.page.viewed', 'x2', 'v2', now(),"
             " now() - interval '1 minute', '{}')",
             s);
    assert_int_equal(pe_db_exec(slow, q, 0, NULL, NULL), 0);
    aggregate(s, false); /* cannot see it yet; its watermark moves past the stamp */
    expect_row("1", "SELECT sessions FROM agg_daily WHERE store_id = '%s'", s);
    assert_int_equal(pe_db_commit(slow), 0);
    pe_db_release(fx.pool, slow);
    /* and one inserted now with a stamp older than the last run */
    event(s, "x3", "v3", NULL, "storefront.page.viewed", 0, "2025-06-02T12:00:00Z", NULL, NULL,
          NULL, NULL, "now() - interval '2 minutes'");
    aggregate(s, false);
    expect_row("3", "SELECT sessions FROM agg_daily WHERE store_id = '%s'", s);
}

/* The collector logs the exact least received_at of a commit (0009_event_commits.sql): a batch
 * whose request arrived an hour before its commit — far beyond the 5 minutes assumed for other
 * writers — is aggregated by the next run, and the log keeps only what some run has not seen. */
static void test_collector_commit_bound(void **state)
{
    (void)state;
    char s[PE_ID_LEN];
    make_store("Queued shop", "UTC", s);
    aggregate(s, false); /* the store's first (full) run: nothing yet */
    pe_collector_config_t cfg = {.db = fx.pool};
    pe_collector_t *c = pe_collector_new(&cfg);
    assert_non_null(c);
    int64_t arrived = pe_now_unix_us() - 3600LL * 1000000; /* an hour ago */
    char ts[40], body[1024], err[128];
    pe_time_format_rfc3339(arrived - 60LL * 1000000, ts, sizeof ts);
    snprintf(body, sizeof body,
             "[{\"eventId\":\"6f1c2b1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b\",\"name\":"
             "\"storefront.page.viewed\",\"timestamp\":\"%s\",\"sessionId\":\"q1\","
             "\"anonymousId\":\"a1\",\"context\":{\"page\":{\"path\":\"/\"}},"
             "\"properties\":{}}]",
             ts);
    cJSON *events = NULL;
    assert_int_equal(pe_json_parse(body, strlen(body), &events, err, sizeof err), 0);
    size_t accepted = 0;
    assert_int_equal(
        pe_collector_ingest_wait(c, s, PE_COLLECTOR_LIVE, events, arrived, &accepted, NULL), 0);
    assert_int_equal(accepted, 1);
    cJSON_Delete(events);
    pe_collector_free(c);
    expect_row("t",
               "SELECT min(received_from) <= now() - interval '59 minutes' FROM event_commits"
               " WHERE xid >= (SELECT pg_snapshot_xmin(snapshot) FROM agg_watermarks"
               "               WHERE store_id = '%s')",
               s);
    aggregate(s, false);
    expect_row("1", "SELECT sessions FROM agg_daily WHERE store_id = '%s'", s);
    /* Every watermark has now seen that commit: the log forgets it. A watermark is a snapshot,
     * and a snapshot's xmin is held back by any transaction open anywhere in the cluster (other
     * tests run beside this one), so the job may need a few runs before its snapshots are past
     * the commit; a log that never forgets still fails after 20 runs. */
    char *left = NULL;
    for (int run = 0; run < 20; run++) {
        aggregate(NULL, false);
        free(left);
        left = pe_test_sql(fx.conninfo, "SELECT count(*) FROM event_commits"
                                        " WHERE received_from <= now() - interval '59 minutes'");
        if (left && strcmp(left, "0") == 0)
            break;
        usleep(250 * 1000);
    }
    assert_non_null(left);
    assert_string_equal(left, "0");
    free(left);
}

/* ---- property test --------------------------------------------------------------------------- */

typedef struct {
    char session[16], anon[16], user[16];
    char name[40];
    int step;
    char at[40];
    char device[16];
    char utm[16];
    char campaign[16];
    char ctx[160];
    char props[300];
} gen_event_t;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* Sessions of a few visitors and customers over 12 days around a month end, in shuffled
 * funnels (some steps skipped, some out of order), with product views, carts and orders. */
static size_t generate(gen_event_t *ev, size_t cap)
{
    static const char *const devices[] = {"desktop", "mobile", "tablet", NULL};
    static const char *const utms[] = {"google", "news", NULL, NULL};
    static const char *const campaigns[] = {"Spring", "BLACK-friday", NULL, NULL};
    static const char *const locales[] = {"de-DE", "en-US", "fr", NULL};
    static const char *const names[] = {"storefront.cart.item_added", "checkout.session.started",
                                        "checkout.shipping.submitted", "checkout.payment.submitted",
                                        "checkout.order.completed"};
    size_t n = 0;
    for (int sess = 0; sess < 70 && n + 12 < cap; sess++) {
        int64_t t = 1751241600LL /* 2025-06-30T00:00Z */ - 6 * 86400 + (int64_t)pick(12 * 86400);
        char session[16], anon[16], user[16] = "";
        snprintf(session, sizeof session, "s%d", sess);
        snprintf(anon, sizeof anon, "v%u", pick(25));
        if (pick(5)) /* most orders by three signed-in customers: many come back */
            snprintf(user, sizeof user, "u%u", pick(3));
        const char *device = devices[pick(4)], *utm = utms[pick(4)], *loc = locales[pick(4)];
        const char *campaign = campaigns[pick(4)];
        int steps = (int)pick(7); /* 0..6: how far the journey goes */
        int kinds = 2 + steps;
        for (int k = 0; k < kinds; k++) {
            gen_event_t *e = &ev[n++];
            memset(e, 0, sizeof *e);
            snprintf(e->session, sizeof e->session, "%s", session);
            snprintf(e->anon, sizeof e->anon, "%s", anon);
            int64_t at = t + k * 120 + (pick(5) == 0 ? -(int64_t)pick(600) : 0); /* some swapped */
            time_t tt = (time_t)at;
            struct tm tm;
            gmtime_r(&tt, &tm);
            strftime(e->at, sizeof e->at, "%Y-%m-%dT%H:%M:%SZ", &tm);
            if (device && pick(4))
                snprintf(e->device, sizeof e->device, "%s", device);
            if (k == 0) {
                snprintf(e->name, sizeof e->name, "storefront.page.viewed");
                if (utm)
                    snprintf(e->utm, sizeof e->utm, "%s", utm);
                if (campaign && pick(3)) /* else the product view carries it, or nothing */
                    snprintf(e->campaign, sizeof e->campaign, "%s", campaign);
                if (loc)
                    snprintf(e->ctx, sizeof e->ctx, "{\"locale\":\"%s\"}", loc);
                snprintf(e->props, sizeof e->props, "{}");
            } else if (k == 1) {
                snprintf(e->name, sizeof e->name, "storefront.product.viewed");
                if (campaign && pick(2))
                    snprintf(e->campaign, sizeof e->campaign, "%s", campaign);
                snprintf(e->props, sizeof e->props, "{\"productId\":\"p%u\"%s}", pick(5),
                         pick(2) ? ",\"category\":\"C1\"" : "");
            } else {
                int step = k - 1 > 5 ? 5 : k - 1;
                if (pick(6) == 0)
                    step = 1 + (int)pick(5); /* a repeated or skipped step */
                e->step = step;
                snprintf(e->name, sizeof e->name, "%s", names[step - 1]);
                unsigned p = pick(5), qn = 1 + pick(3);
                if (step == 1)
                    snprintf(e->props, sizeof e->props,
                             "{\"productId\":\"p%u\",\"quantity\":%u,\"price\":%u.5,"
                             "\"currency\":\"EUR\"}",
                             p, qn, p + 1);
                else if (step == 5) {
                    snprintf(e->props, sizeof e->props,
                             "{\"orderId\":\"o%d\",\"value\":%u.25,\"currency\":\"EUR\","
                             "\"items\":[{\"productId\":\"p%u\",\"quantity\":%u,\"price\":%u.5},"
                             "{\"productId\":\"p%u\",\"quantity\":1,\"price\":2,\"category\":"
                             "\"C2\"}]}",
                             sess, qn * (p + 1) + 2, p, qn, p + 1, (p + 1) % 5);
                    if (user[0])
                        snprintf(e->user, sizeof e->user, "%s", user);
                } else
                    snprintf(e->props, sizeof e->props, "{}");
            }
        }
    }
    /* about half the sessions were exposed to an experiment flag a second after their landing
     * (0018_exposures.sql); drawn after the journeys so that those stay as they were */
    for (size_t i = 0, m = n; i < m && n < cap; i++) {
        if (strcmp(ev[i].name, "storefront.page.viewed") != 0 || pick(2))
            continue;
        gen_event_t *e = &ev[n++];
        memset(e, 0, sizeof *e);
        snprintf(e->session, sizeof e->session, "%s", ev[i].session);
        snprintf(e->anon, sizeof e->anon, "%s", ev[i].anon);
        snprintf(e->at, sizeof e->at, "%s", ev[i].at);
        e->at[18] = (char)(e->at[18] == '9' ? '8' : e->at[18] + 1); /* a second apart */
        snprintf(e->name, sizeof e->name, "experiment.exposure.assigned");
        snprintf(e->props, sizeof e->props, "{\"flagKey\":\"exp-1\",\"variant\":\"%s\"}",
                 pick(2) ? "treatment" : "control");
    }
    return n;
}

static void insert_generated(const char *store, const gen_event_t *e)
{
    /* stamped up to a minute back: a request that arrived before the last run */
    char recv[64];
    snprintf(recv, sizeof recv, "now() - interval '%u seconds'", pick(60));
    event_campaign(store, e->session, e->anon, e->user[0] ? e->user : NULL, e->name, e->step, e->at,
                   e->device[0] ? e->device : NULL, e->utm[0] ? e->utm : NULL,
                   e->campaign[0] ? e->campaign : NULL, e->ctx[0] ? e->ctx : NULL, e->props, recv);
}

static long differences(const char *table, const char *store)
{
    char *v = pe_test_sqlf(fx.conninfo,
                           "SELECT count(*) FROM ((SELECT * FROM inc_%s WHERE store_id = '%s'"
                           "   EXCEPT ALL SELECT * FROM %s WHERE store_id = '%s')"
                           "  UNION ALL (SELECT * FROM %s WHERE store_id = '%s'"
                           "   EXCEPT ALL SELECT * FROM inc_%s WHERE store_id = '%s')) d",
                           table, store, table, store, table, store, table, store);
    long n = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return n;
}

/* customers.<kind>.range.<field> of an overview answer. */
static double overview_customers(const cJSON *j, const char *kind, const char *field)
{
    const cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "customers"), kind);
    x = cJSON_GetObjectItem(cJSON_GetObjectItem(x, "range"), field);
    if (!cJSON_IsNumber(x))
        fail_msg("customers.%s.range.%s is not a number", kind, field);
    return x->valuedouble;
}

/* Customers ordering in days lo..hi, and the new ones among them, counted from the orders. */
static void brute_customers(const char *store, int32_t lo, int32_t hi, long *all, long *fresh)
{
    char *v = pe_test_sqlf(
        fx.conninfo,
        "SELECT count(DISTINCT o.customer) || '|' ||"
        "       count(DISTINCT o.customer) FILTER (WHERE f.first_day >= "
        "date '1970-01-01' + %d)"
        "  FROM agg_orders o JOIN (SELECT customer, min(day) AS first_day"
        "   FROM agg_orders WHERE store_id = '%s' GROUP BY customer) f USING (customer)"
        " WHERE o.store_id = '%s' AND o.day BETWEEN date '1970-01-01' + %d"
        "   AND date '1970-01-01' + %d",
        lo, store, store, lo, hi);
    assert_non_null(v);
    assert_int_equal(sscanf(v, "%ld|%ld", all, fresh), 2);
    free(v);
}

/* The overview's distinct customers (from agg_customer_days, no DISTINCT over orders) against a
 * count over the orders, for every range of days of the data and the as-long range before it. */
static void check_overview_customers(const char *store)
{
    char *lo_s = pe_test_sqlf(
        fx.conninfo, "SELECT min(day) - date '1970-01-01' FROM agg_orders WHERE store_id = '%s'",
        store);
    char *hi_s = pe_test_sqlf(
        fx.conninfo, "SELECT max(day) - date '1970-01-01' FROM agg_orders WHERE store_id = '%s'",
        store);
    int32_t first = (int32_t)strtol(lo_s, NULL, 10), last = (int32_t)strtol(hi_s, NULL, 10);
    free(lo_s);
    free(hi_s);
    assert_true(last - first >= 7);
    int checked = 0, with_returning = 0;
    for (int32_t from = first; from <= last; from++) {
        for (int32_t to = from; to <= last; to++) {
            pe_aggregate_query_t q = {.from = from, .to = to};
            cJSON *j = NULL;
            pe_aggregate_clock_t clock = {.today = to, .time_of_day = PE_AGGREGATE_DAY_OVER};
            assert_int_equal(pe_aggregate_overview(fx.pool, store, &clock, &q, &j), 0);
            long all, fresh, pall, pfresh;
            int32_t len = to - from + 1;
            brute_customers(store, from, to, &all, &fresh);
            brute_customers(store, from - len, from - 1, &pall, &pfresh);
            assert_int_equal((long)overview_customers(j, "new", "value"), fresh);
            assert_int_equal((long)overview_customers(j, "returning", "value"), all - fresh);
            assert_int_equal((long)overview_customers(j, "new", "previous"), pfresh);
            assert_int_equal((long)overview_customers(j, "returning", "previous"), pall - pfresh);
            with_returning += all - fresh > 0;
            checked++;
            cJSON_Delete(j);
        }
    }
    assert_true(checked > 30 && with_returning > 10);
}

static void test_incremental_equals_full(void **state)
{
    (void)state;
    enum { CAP = 1000, ORDERS = 3 };
    static gen_event_t ev[CAP];
    rng_state = 0x9e3779b97f4a7c15ull;
    size_t n = generate(ev, CAP);
    assert_true(n > 200);
    static size_t order[CAP];
    char stores[ORDERS][PE_ID_LEN];
    static const char *const zones[ORDERS] = {"Asia/Tokyo", "Asia/Tokyo", "Asia/Tokyo"};
    for (int o = 0; o < ORDERS; o++) {
        char name[32];
        snprintf(name, sizeof name, "Property %d", o);
        make_store(name, zones[o], stores[o]);
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = pick((unsigned)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        size_t i = 0;
        int batches = 0;
        while (i < n) {
            size_t len = 1 + pick(o == 0 ? 8 : o == 1 ? 40 : 150);
            for (size_t k = 0; k < len && i < n; k++, i++)
                insert_generated(stores[o], &ev[order[i]]);
            aggregate(stores[o], false);
            batches++;
        }
        assert_true(batches > 1);
    }
    for (size_t t = 0; t < PE_ARRAY_LEN(TABLES); t++)
        sql("CREATE TABLE inc_%s AS SELECT * FROM %s", TABLES[t], TABLES[t]);
    for (int o = 0; o < ORDERS; o++) {
        aggregate(stores[o], true);
        for (size_t t = 0; t < PE_ARRAY_LEN(TABLES); t++) {
            long d = differences(TABLES[t], stores[o]);
            if (d != 0)
                fail_msg("order %d: %s differs from --full in %ld rows", o, TABLES[t], d);
        }
    }
    /* every arrival order gave the same numbers (the stores differ only in their ids) */
    for (int o = 1; o < ORDERS; o++) {
        char *v = pe_test_sqlf(
            fx.conninfo,
            "SELECT count(*) FROM ((SELECT " DAILY_COLS ", day FROM agg_daily"
            " WHERE store_id = '%s' EXCEPT ALL SELECT " DAILY_COLS ", day FROM agg_daily"
            " WHERE store_id = '%s') UNION ALL (SELECT " DAILY_COLS ", day FROM agg_daily"
            " WHERE store_id = '%s' EXCEPT ALL SELECT " DAILY_COLS ", day FROM agg_daily"
            " WHERE store_id = '%s')) d",
            stores[0], stores[o], stores[o], stores[0]);
        assert_string_equal(v, "0");
        free(v);
    }
    /* the data is not trivial: several days, orders, returning customers, a month boundary */
    char *v =
        pe_test_sqlf(fx.conninfo,
                     "SELECT count(*) > 5 AND sum(orders) > 5 AND sum(returning_customers) > 0"
                     "   AND count(DISTINCT date_trunc('month', day)) = 2"
                     "  FROM agg_daily WHERE store_id = '%s'",
                     stores[0]);
    assert_string_equal(v, "t");
    free(v);
    v = pe_test_sqlf(
        fx.conninfo,
        "SELECT sum(visitors) > (SELECT sum(visitors) FROM agg_monthly WHERE store_id = '%s')"
        "  FROM agg_daily WHERE store_id = '%s'",
        stores[0], stores[0]);
    assert_string_equal(v, "t");
    free(v);
    check_overview_customers(stores[0]);
    /* exposures: one row per exposed session, both variants, none in the holdout */
    v = pe_test_sqlf(fx.conninfo,
                     "SELECT count(*) > 15 AND count(DISTINCT variant) = 2 AND NOT bool_or(holdout)"
                     "   AND count(*) = count(DISTINCT session_id)"
                     "  FROM agg_exposures WHERE store_id = '%s' AND flag_key = 'exp-1'",
                     stores[0]);
    assert_string_equal(v, "t");
    free(v);
    /* visitor types and campaigns are not trivial either, and each visitor has one first
     * session: the one that started first (0015_session_visitor_campaign.sql) */
    v = pe_test_sqlf(fx.conninfo,
                     "SELECT count(*) FILTER (WHERE visitor_type = 'returning') > 10"
                     "   AND count(DISTINCT campaign) = 3"
                     "   AND count(*) FILTER (WHERE visitor_type = 'new')"
                     "       = count(DISTINCT visitor)"
                     "   AND bool_and(visitor_type = CASE WHEN session_id ="
                     "         (SELECT s2.session_id FROM agg_sessions s2"
                     "           WHERE s2.store_id = s.store_id AND s2.visitor = s.visitor"
                     "           ORDER BY s2.started_at, s2.session_id LIMIT 1)"
                     "         THEN 'new' ELSE 'returning' END)"
                     "  FROM agg_sessions s WHERE store_id = '%s'",
                     stores[0]);
    assert_string_equal(v, "t");
    free(v);
    /* every subset of the filters splits each hour's store total exactly (0013, invariant 2) */
    v = pe_test_sqlf(
        fx.conninfo,
        "WITH t AS (SELECT h.day, h.hour, h.sessions::bigint, h.reach_cart::bigint,"
        "   h.reach_checkout::bigint, h.reach_shipping::bigint, h.reach_payment::bigint,"
        "   h.reach_confirmation::bigint, d.dims"
        "  FROM agg_funnel_hourly h CROSS JOIN generate_series(1, 7) d(dims)"
        " WHERE h.store_id = '%s'),"
        " c AS (SELECT day, hour, sum(sessions), sum(reach_cart), sum(reach_checkout),"
        "   sum(reach_shipping), sum(reach_payment), sum(reach_confirmation), dims::int"
        "  FROM agg_funnel_hourly_segments WHERE store_id = '%s'"
        " GROUP BY day, hour, dims)"
        " SELECT count(*) FROM ((TABLE t EXCEPT ALL TABLE c)"
        "                       UNION ALL (TABLE c EXCEPT ALL TABLE t)) d",
        stores[0], stores[0]);
    assert_string_equal(v, "0");
    free(v);
    v = pe_test_sqlf(fx.conninfo,
                     "SELECT count(DISTINCT dims) = 7 AND count(DISTINCT device) > 2"
                     "   AND count(DISTINCT country) > 2 AND count(DISTINCT source) > 2"
                     "  FROM agg_funnel_hourly_segments WHERE store_id = '%s'",
                     stores[0]);
    assert_string_equal(v, "t");
    free(v);
}

/* Exposures (0018_exposures.sql): the unit's first variant in the session and when, a holdout
 * exposure marked, an exposure without a flag key ignored. */
static void test_exposures(void **state)
{
    (void)state;
    char s[PE_ID_LEN];
    make_store("Exposures", "Europe/Berlin", s);
    static const char *const rows[] = {
        "'2026-03-02T10:00:05Z', 'experiment.exposure.assigned', 'a1',"
        " '{\"flagKey\":\"ap-x\",\"variant\":\"treatment\"}', NULL",
        "'2026-03-02T10:00:01Z', 'experiment.exposure.assigned', 'a1',"
        " '{\"flagKey\":\"ap-x\",\"variant\":\"control\"}', NULL",
        "'2026-03-02T10:00:02Z', 'experiment.exposure.assigned', 'a2',"
        " '{\"flagKey\":\"ap-x\",\"variant\":\"control\"}', '{\"holdout\":true}'",
        "'2026-03-02T10:00:03Z', 'experiment.exposure.assigned', 'a3', '{\"variant\":\"control\"}',"
        " NULL",
        "'2026-03-02T10:00:00Z', 'storefront.page.viewed', 'a1', '{}', NULL",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(rows); i++)
        sql("INSERT INTO events (store_id, occurred_at, event_id, name, funnel_step, session_id,"
            " anonymous_id, client_ts, received_at, properties, custom)"
            " SELECT '%s', o::timestamptz, gen_random_uuid(), n, 0, 'sx-' || a, a,"
            " o::timestamptz, now(), p::jsonb, c::jsonb"
            "   FROM (VALUES (%s)) v(o, n, a, p, c)",
            s, rows[i]);
    aggregate(s, false);
    expect_row("ap-x|a1|control|1772445601|f",
               "SELECT flag_key, unit, variant, extract(epoch FROM first_at)::bigint, holdout"
               "  FROM agg_exposures WHERE store_id = '%s' AND unit = 'a1'",
               s);
    expect_row("t", "SELECT holdout FROM agg_exposures WHERE store_id = '%s' AND unit = 'a2'", s);
    expect_row("0", "SELECT count(*) FROM agg_exposures WHERE store_id = '%s' AND unit = 'a3'", s);
    char *before = digest(s);
    aggregate(s, true);
    char *after = digest(s);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* A session of store that starts at start (RFC 3339) with a page view and, when order_at is
 * not NULL, ends in an order of value by customer user. */
static void visit(const char *store, const char *session, const char *user, const char *start,
                  const char *order_at, int value)
{
    event(store, session, session, NULL, "storefront.page.viewed", 0, start, "desktop", NULL, NULL,
          NULL, NULL);
    if (!order_at)
        return;
    char props[256];
    snprintf(props, sizeof props,
             "{\"orderId\":\"o-%s\",\"value\":%d,\"currency\":\"EUR\",\"items\":[{\"productId\":"
             "\"p1\",\"quantity\":1,\"price\":%d}]}",
             session, value, value);
    event(store, session, session, user, "checkout.order.completed", 5, order_at, "desktop", NULL,
          NULL, props, NULL);
}

static double period_figure(const cJSON *j, const char *metric, const char *period,
                            const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, metric), period),
        field);
    if (!cJSON_IsNumber(v))
        fail_msg("%s.%s.%s is not a number", metric, period, field);
    return v->valuedouble;
}

/* Periods that are not over are compared like with like (read.c invariant 3): at 01:05 on
 * Tuesday 2026-12-08 (Berlin, UTC+1) today runs until 01:05 against Monday until 01:05, the
 * week Monday + Tuesday until 01:05 against the week before's, the month the 1st to the 8th
 * until 01:05 against November's, and a range ending today against the days before it, cut
 * the same way. Hand-computed figures; the same day over compares whole days. */
static void test_periods_like_with_like(void **state)
{
    (void)state;
    char s[PE_ID_LEN];
    make_store("Early morning", "Europe/Berlin", s);
    visit(s, "T1", "c1", "2026-12-07T23:30:00Z", "2026-12-07T23:40:00Z", 10); /* 8th 00:30 */
    visit(s, "Y1", "c2", "2026-12-06T23:40:00Z", "2026-12-06T23:50:00Z", 20); /* 7th 00:40 */
    visit(s, "Y2", "c3", "2026-12-07T08:00:00Z", "2026-12-07T08:10:00Z", 100);
    visit(s, "Y3", "c7", "2026-12-06T23:55:00Z", "2026-12-07T00:30:00Z", 30); /* ordered 01:30 */
    visit(s, "W1", "c1", "2026-11-30T23:10:00Z", "2026-11-30T23:20:00Z", 5);  /* 1st 00:10 */
    visit(s, "W2", "c6", "2026-12-01T11:00:00Z", "2026-12-01T11:10:00Z", 7);
    visit(s, "P1", "c4", "2026-11-30T14:00:00Z", "2026-11-30T14:10:00Z", 50); /* Mon 30th */
    visit(s, "M1", "c5", "2026-11-07T23:20:00Z", "2026-11-07T23:30:00Z", 8);  /* 8th 00:20 */
    visit(s, "M2", "c8", "2026-11-08T12:00:00Z", "2026-11-08T12:10:00Z", 9);
    visit(s, "M3", "c5", "2026-11-03T10:00:00Z", "2026-11-03T10:10:00Z", 4);
    visit(s, "N1", NULL, "2026-12-07T23:50:00Z", NULL, 0); /* 8th 00:50, no order */
    aggregate(s, false);

    int32_t today = 0, from = 0;
    assert_int_equal(pe_aggregate_date_parse("2026-12-08", &today), 0);
    assert_int_equal(pe_aggregate_date_parse("2026-12-02", &from), 0);
    pe_aggregate_query_t q = {.from = from, .to = today};
    pe_aggregate_clock_t clock = {.today = today, .time_of_day = 3600 + 5 * 60};
    cJSON *j = NULL;
    assert_int_equal(pe_aggregate_overview(fx.pool, s, &clock, &q, &j), 0);
    assert_string_equal(pe_test_json_str(j, "comparedUntil"), "01:05");
    static const struct {
        const char *period;
        double value, previous;
    } revenue[] = {{"today", 10, 20}, {"week", 160, 55}, {"month", 172, 12}, {"range", 160, 55}};
    for (size_t i = 0; i < PE_ARRAY_LEN(revenue); i++) {
        assert_float_equal(period_figure(j, "revenue", revenue[i].period, "value"),
                           revenue[i].value, 1e-9);
        assert_float_equal(period_figure(j, "revenue", revenue[i].period, "previous"),
                           revenue[i].previous, 1e-9);
    }
    /* today: T1 and N1 against Y1 and Y3 (Y3 ordered after 01:05: not converted yet) */
    assert_float_equal(period_figure(j, "orders", "today", "previous"), 1, 1e-9);
    assert_float_equal(period_figure(j, "conversionRate", "today", "value"), 0.5, 1e-9);
    assert_float_equal(period_figure(j, "conversionRate", "today", "previous"), 0.5, 1e-9);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "customers");
    /* c1 ordered on the 1st: returning today; c2 was new yesterday */
    assert_float_equal(period_figure(c, "new", "today", "value"), 0, 1e-9);
    assert_float_equal(period_figure(c, "returning", "today", "value"), 1, 1e-9);
    assert_float_equal(period_figure(c, "new", "today", "previous"), 1, 1e-9);
    /* the month: c1 (once), c6, c2, c3, c7, all new; November until the 8th 01:05: c5 once */
    assert_float_equal(period_figure(c, "new", "month", "value"), 5, 1e-9);
    assert_float_equal(period_figure(c, "returning", "month", "value"), 0, 1e-9);
    assert_float_equal(period_figure(c, "new", "month", "previous"), 1, 1e-9);
    assert_float_equal(period_figure(c, "returning", "month", "previous"), 0, 1e-9);
    cJSON_Delete(j);

    /* the same day over: whole days against whole days */
    clock.time_of_day = PE_AGGREGATE_DAY_OVER;
    assert_int_equal(pe_aggregate_overview(fx.pool, s, &clock, &q, &j), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "comparedUntil")));
    assert_float_equal(period_figure(j, "revenue", "today", "previous"), 150, 1e-9);
    assert_float_equal(period_figure(j, "revenue", "week", "previous"), 62, 1e-9);
    assert_float_equal(period_figure(j, "revenue", "month", "previous"), 21, 1e-9);
    cJSON_Delete(j);
}

/* Index scans of agg_session_products so far (the statistics of finished transactions). */
static long product_index_scans(void)
{
    char *v = pe_test_sqlf(fx.conninfo, "SELECT idx_scan FROM pg_stat_user_tables"
                                        " WHERE relname = 'agg_session_products'");
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

/* Waits until the backends that started at or after since (a timestamptz) have ended. A
 * backend flushes its statistics on exit before it leaves pg_stat_activity (a before-exit hook
 * against a later one), so once it is gone its index scans are in pg_stat_user_tables. */
static void wait_backends_gone(const char *since)
{
    for (int i = 0;; i++) {
        char *n = pe_test_sqlf(fx.conninfo,
                               "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                               " current_database() AND pid <> pg_backend_pid()"
                               " AND backend_start >= '%s'",
                               since);
        bool gone = strcmp(n, "0") == 0;
        free(n);
        if (gone)
            return;
        if (i == 300)
            fail_msg("the command's sessions are still open after 30 s");
        pe_test_sleep_ms(100);
    }
}

/* A store's first roll-up (a full one) comes after the planner's statistics were taken without
 * it: every other store is then among the most common values of store_id, so the planner
 * expects about one row of the new store. It then joined the store's sessions to its days on
 * store_id alone and probed agg_session_products once per session and day, or scanned that
 * cross product once per order: minutes for 8,400 sessions, which stalled a CI run. The run
 * takes its own statistics of the rows it rebuilt before it rolls them up: about one probe per
 * session at most, never one per session and day. */
static void test_first_run_after_statistics(void **state)
{
    (void)state;
    pe_test_tenant_t t;
    pe_test_seeded_store(&fx, &t, "Before", NULL, "40", "28", "2026-11-29", "300", NULL);
    pe_test_tenant_make(&t, fx.pool, "Late arrival", "Europe/Berlin", "EUR", NULL, NULL);
    sql("ANALYZE agg_sessions, agg_session_products, agg_orders");
    const char *sim[] = {"simulate", "--store", t.id,     "--days",     "28",
                         "--seed",   "5",       "--end",  "2026-11-29", "--sessions-per-day",
                         "300",      "--via",   "direct", NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, sim));
    char *since = pe_test_sqlf(fx.conninfo, "SELECT now()");
    wait_backends_gone(since);
    long before = product_index_scans();
    const char *args[] = {"aggregate", "--store", t.id, NULL};
    cJSON_Delete(pe_test_cli_json(fx.conninfo, 0, args));
    wait_backends_gone(since);
    free(since);
    long probes = product_index_scans() - before;
    char *sessions =
        pe_test_sqlf(fx.conninfo, "SELECT count(*) FROM agg_sessions WHERE store_id = '%s'", t.id);
    long n = strtol(sessions, NULL, 10);
    free(sessions);
    print_message("a new store's roll-up: %ld index probes of agg_session_products for %ld "
                  "sessions\n",
                  probes, n);
    assert_true(n > 5000);
    assert_true(probes <= 2 * n);
}

static void test_unknown_store(void **state)
{
    (void)state;
    pe_aggregate_options_t opt = {.store_id = "00000000-0000-4000-8000-000000000000", .wait = true};
    pe_aggregate_report_t rep;
    char err[256];
    assert_int_equal(pe_aggregate_run(fx.pool, &opt, &rep, err, sizeof err), PE_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_run_after_statistics),
        cmocka_unit_test(test_exact_numbers),
        cmocka_unit_test(test_commit_after_run_is_not_missed),
        cmocka_unit_test(test_collector_commit_bound),
        cmocka_unit_test(test_incremental_equals_full),
        cmocka_unit_test(test_exposures),
        cmocka_unit_test(test_unknown_store),
        cmocka_unit_test(test_periods_like_with_like),
    };
    return cmocka_run_group_tests(tests, setup, pe_test_fixture_teardown);
}
