/*
 * test_catalog.c — the product catalogue against a real profit-engine child process and a
 * private, migrated database: bulk upsert (insert, then replace), all-or-nothing refusals that
 * name the field, exact money, pagination by SKU with a category filter, and tenant isolation.
 *
 * Invariants the tests hold the server to:
 *  1. A store reads and writes only its own products: another store's secret key, another
 *     store's merchant and a publishable key get 403 on both routes, and nothing changes.
 *  2. One bad product refuses the whole request with 400 naming "products[i].field", and the
 *     table is exactly as before; more than 1000 products answer 413.
 *  3. Prices come back as the decimal that was sent; a missing currency is the store's.
 *  4. Following nextAfter visits every product exactly once, in SKU order.
 *  5. The database's CHECKs agree with the validator (a direct INSERT of what the validator
 *     refuses is refused too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/api.h"
#include "pe/catalog.h"
#include "pe/tenancy.h"
#include "pe_test.h"

#define PASSWORD "catalog-password-1"

static pe_test_fixture_t fx;
static pe_test_tenant_t a, b;

/* ---- helpers --------------------------------------------------------------------------------- */

/* "X-CSRF-Token: …" sent with every call while a session test sets it (NULL: none). */
static const char *csrf_header;

static long call(const char *method, const char *path, const char *body, const char *header,
                 pe_test_response_t *r)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", fx.server.base_url, path);
    const char *with[] = {header, "Content-Type: application/json", csrf_header, NULL};
    const char *without[] = {"Content-Type: application/json", NULL};
    const char *const *headers = header ? with : without;
    assert_int_equal(pe_test_http(method, url, body, headers, r), 0);
    return r->status;
}

static void products_path(char *out, size_t outlen, const pe_test_tenant_t *t, const char *query)
{
    int n = snprintf(out, outlen, "/api/v1/stores/%s/products%s", t->id, query ? query : "");
    assert_true(n > 0 && (size_t)n < outlen);
}

/* PUT body as t; asserts the status; returns the error message (static) for 4xx. */
static const char *put(const pe_test_tenant_t *t, const char *header, const char *body, long want)
{
    static char message[512];
    char path[256];
    pe_test_response_t r;
    products_path(path, sizeof path, t, NULL);
    call("PUT", path, body, header, &r);
    if (r.status != want)
        fail_msg("PUT status %ld, want %ld: %.400s\nbody sent: %.300s", r.status, want,
                 r.body.data ? r.body.data : "", body);
    message[0] = '\0';
    if (want >= 400) {
        cJSON *j = pe_test_response_json(&r);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        assert_true(cJSON_IsObject(e));
        assert_int_equal(cJSON_GetArraySize(e), 2);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        assert_true(cJSON_IsString(m));
        snprintf(message, sizeof message, "%s", m->valuestring);
        cJSON_Delete(j);
    }
    pe_test_response_free(&r);
    return message;
}

/* GET one page as t with the query; returns the parsed body (caller deletes). */
static cJSON *list(const pe_test_tenant_t *t, const char *header, const char *query, long want)
{
    char path[512];
    pe_test_response_t r;
    products_path(path, sizeof path, t, query);
    call("GET", path, NULL, header, &r);
    if (r.status != want)
        fail_msg("GET %s: status %ld, want %ld: %.300s", path, r.status, want,
                 r.body.data ? r.body.data : "");
    cJSON *j = want == 200 ? pe_test_response_json(&r) : NULL;
    pe_test_response_free(&r);
    return j;
}

static long product_count(const pe_test_tenant_t *t)
{
    return pe_test_sql_long(fx.conninfo, "SELECT count(*) FROM products WHERE store_id = '%s'",
                            t->id);
}

/* A stable fingerprint of t's products, to prove a refused request changed nothing. */
static char *fingerprint(const pe_test_tenant_t *t)
{
    return pe_test_sqlf(
        fx.conninfo,
        "SELECT coalesce(string_agg(concat_ws('|', sku, name, category, price, cost, stock, "
        "currency, updated_at), ';' ORDER BY sku), '') FROM products WHERE store_id = '%s'",
        t->id);
}

static const cJSON *find_sku(const cJSON *page, const char *sku)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(page, "products"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(p, "sku")->valuestring, sku) == 0)
            return p;
    }
    return NULL;
}

/* The JSON text of one field of a product (numbers exactly as the server printed them). */
static char *field_text(const cJSON *product, const char *name)
{
    return cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(product, name));
}

static void expect_field(const cJSON *product, const char *name, const char *want)
{
    char *text = field_text(product, name);
    if (strcmp(text, want) != 0)
        fail_msg("%s: %s, want %s", name, text, want);
    free(text);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_upsert_and_read_back(void **state)
{
    (void)state;
    const char *body =
        "{\"products\":["
        "{\"sku\":\"TEE-1\",\"name\":\"Tee\",\"category\":\"Apparel\",\"price\":19.99,"
        "\"cost\":7.5,\"stock\":12,\"currency\":\"EUR\"},"
        "{\"sku\":\"MUG-1\",\"name\":\"Mug ☕\",\"category\":\"Home\",\"price\":0.1},"
        "{\"sku\":\"BIG-1\",\"name\":\"Sofa\",\"category\":\"Home\","
        "\"price\":1000000000,\"cost\":null,\"stock\":null,\"currency\":\"USD\"}]}";
    put(&a, a.sk_auth, body, 200);
    assert_int_equal(product_count(&a), 3);

    cJSON *page = list(&a, a.sk_auth, NULL, 200);
    const cJSON *tee = find_sku(page, "TEE-1"), *mug = find_sku(page, "MUG-1");
    const cJSON *big = find_sku(page, "BIG-1");
    assert_true(tee && mug && big);
    expect_field(tee, "price", "19.99");
    expect_field(tee, "cost", "7.5");
    expect_field(tee, "stock", "12");
    expect_field(tee, "currency", "\"EUR\"");
    expect_field(mug, "price", "0.1");
    expect_field(mug, "cost", "null");
    expect_field(mug, "stock", "null");
    expect_field(mug, "currency", "\"EUR\""); /* the store's */
    expect_field(mug, "name", "\"Mug ☕\"");
    expect_field(big, "price", "1000000000");
    expect_field(big, "currency", "\"USD\"");
    /* SKU order, bytewise. */
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "products");
    assert_string_equal(cJSON_GetArrayItem(items, 0)->child->valuestring, "BIG-1");
    assert_string_equal(cJSON_GetArrayItem(items, 2)->child->valuestring, "TEE-1");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(page, "nextAfter")));
    cJSON_Delete(page);

    /* Upsert again: the known SKU is replaced (optional fields left out become null). */
    put(&a, a.sk_auth,
        "{\"products\":[{\"sku\":\"TEE-1\",\"name\":\"Tee v2\",\"category\":\"Apparel\","
        "\"price\":24.5}]}",
        200);
    assert_int_equal(product_count(&a), 3);
    page = list(&a, a.sk_auth, NULL, 200);
    tee = find_sku(page, "TEE-1");
    expect_field(tee, "name", "\"Tee v2\"");
    expect_field(tee, "price", "24.5");
    expect_field(tee, "cost", "null");
    cJSON_Delete(page);

    /* A merchant's session works as well as the secret key. */
    pe_test_tenant_sign_in(&a, &fx.server, NULL);
    page = list(&a, a.cookie, NULL, 200);
    assert_non_null(find_sku(page, "MUG-1"));
    cJSON_Delete(page);
    static const char by_session[] =
        "{\"products\":[{\"sku\":\"SESSION-1\",\"name\":\"By session\",\"category\":\"X\","
        "\"price\":1}]}";
    /* a session's write carries its anti-CSRF token */
    put(&a, a.cookie, by_session, 403);
    assert_int_equal(product_count(&a), 3);
    csrf_header = a.csrf;
    put(&a, a.cookie, by_session, 200);
    csrf_header = NULL;
    assert_int_equal(product_count(&a), 4);
}

static void test_all_or_nothing_and_field_named(void **state)
{
    (void)state;
    static const struct {
        const char *body, *want;
        long status;
    } cases[] = {
        {"{\"products\":[{\"sku\":\"OK-1\",\"name\":\"n\",\"category\":\"c\",\"price\":1},"
         "{\"sku\":\"OK-2\",\"name\":\"n\",\"category\":\"c\",\"price\":2},"
         "{\"sku\":\"OK-3\",\"name\":\"n\",\"category\":\"c\",\"price\":3},"
         "{\"sku\":\"BAD\",\"name\":\"n\",\"category\":\"c\",\"price\":-1}]}",
         "products[3].price: must be >= 0", 400},
        {"{\"products\":[{\"sku\":\"OK-1\",\"name\":\"n\",\"category\":\"c\",\"price\":1},"
         "{\"name\":\"n\",\"category\":\"c\",\"price\":2}]}",
         "products[1].sku: is required", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":1,"
         "\"colour\":\"red\"}]}",
         "products[0].colour: unknown field", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":1},"
         "{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":1}]}",
         "products[1].sku: the same SKU as products[0]", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":1,"
         "\"currency\":\"eur\"}]}",
         "products[0].currency: must be an ISO 4217 code", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":1,"
         "\"stock\":1.5}]}",
         "products[0].stock: must be an integer", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":1,"
         "\"cost\":1e10}]}",
         "products[0].cost: must be <= 1000000000", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"\",\"category\":\"c\",\"price\":1}]}",
         "products[0].name: must not be empty", 400},
        {"{\"products\":[{\"sku\":\"A\\u0085B\",\"name\":\"n\",\"category\":\"c\",\"price\":1}]}",
         "products[0].sku: must not contain control characters", 400},
        {"{\"products\":[{\"sku\":\"A\",\"name\":\"n\",\"category\":\"c\",\"price\":\"1\"}]}",
         "products[0].price: must be a number", 400},
        {"{\"products\":[]}", "products: must hold at least one product", 400},
        {"{\"products\":{}}", "products: must be an array", 400},
        {"{\"items\":[]}", "items: unknown field", 400},
        {"[]", "body: must be an object", 400},
    };
    put(&b, b.sk_auth,
        "{\"products\":[{\"sku\":\"KEEP\",\"name\":\"Keep\",\"category\":\"c\",\"price\":5}]}",
        200);
    char *before = fingerprint(&b);
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        const char *msg = put(&b, b.sk_auth, cases[i].body, cases[i].status);
        if (strncmp(msg, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: message '%s', want '%s…'", i, msg, cases[i].want);
        char *after = fingerprint(&b);
        assert_string_equal(before, after);
        free(after);
    }

    /* 1001 products: 413, nothing written. */
    pe_buf_t big = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&big, "{\"products\":["), 0);
    for (int i = 0; i <= PE_CATALOG_MAX_PRODUCTS; i++)
        assert_int_equal(pe_buf_printf(&big,
                                       "%s{\"sku\":\"N-%04d\",\"name\":\"n\",\"category\":\"c\","
                                       "\"price\":1}",
                                       i ? "," : "", i),
                         0);
    assert_int_equal(pe_buf_puts(&big, "]}"), 0);
    const char *msg = put(&b, b.sk_auth, big.data, 413);
    assert_non_null(strstr(msg, "at most 1000"));
    pe_buf_free(&big);
    char *after = fingerprint(&b);
    assert_string_equal(before, after);
    free(after);
    free(before);
}

/* cJSON reads 1e400 as inf and would store null: refused naming the field, with the one rule of
 * pe/core.h, and nothing of the request is written (all or nothing). */
static void test_nonfinite_numbers_refused(void **state)
{
    (void)state;
    static const struct {
        const char *field, *raw, *named;
    } CASES[] = {
        {"price", "1e400", "products[1].price"},  {"price", "-1e400", "products[1].price"},
        {"cost", "1e999", "products[1].cost"},    {"stock", "1e400", "products[1].stock"},
        {"stock", "-1e400", "products[1].stock"},
    };
    put(&b, b.sk_auth,
        "{\"products\":[{\"sku\":\"FIN-1\",\"name\":\"Finite\",\"category\":\"c\",\"price\":5}]}",
        200);
    char *before = fingerprint(&b);
    for (size_t i = 0; i < PE_ARRAY_LEN(CASES); i++) {
        char body[512], want[256];
        bool price = strcmp(CASES[i].field, "price") == 0;
        snprintf(body, sizeof body,
                 "{\"products\":[{\"sku\":\"FIN-1\",\"name\":\"Changed\",\"category\":\"c\","
                 "\"price\":6},{\"sku\":\"FIN-2\",\"name\":\"n\",\"category\":\"c\",%s\"%s\":%s}]}",
                 price ? "" : "\"price\":1,", CASES[i].field, CASES[i].raw);
        snprintf(want, sizeof want, "%s: %s", CASES[i].named, PE_JSON_NONFINITE_RULE);
        const char *msg = put(&b, b.sk_auth, body, 400);
        if (strcmp(msg, want) != 0)
            fail_msg("%s %s: message '%s', want '%s'", CASES[i].field, CASES[i].raw, msg, want);
        char *after = fingerprint(&b);
        assert_string_equal(before, after);
        free(after);
    }
    free(before);
}

static void test_pagination_and_category(void **state)
{
    (void)state;
    pe_test_tenant_t *t = &b;
    pe_buf_t body = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&body, "{\"products\":["), 0);
    for (int i = 0; i < 25; i++)
        assert_int_equal(pe_buf_printf(&body,
                                       "%s{\"sku\":\"P-%02d\",\"name\":\"Product %d\","
                                       "\"category\":\"%s\",\"price\":%d.5}",
                                       i ? "," : "", i, i, i % 3 == 0 ? "Shoes" : "Hats", i),
                         0);
    assert_int_equal(pe_buf_puts(&body, "]}"), 0);
    put(t, t->sk_auth, body.data, 200);
    pe_buf_free(&body);
    long total = product_count(t); /* 25 + KEEP */
    assert_int_equal(total, 26);

    char query[256] = "?limit=10";
    char last[64] = "";
    long seen = 0;
    for (int pages = 0; pages < 10; pages++) {
        cJSON *page = list(t, t->sk_auth, query, 200);
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(page, "products"))
        {
            const char *sku = cJSON_GetObjectItemCaseSensitive(p, "sku")->valuestring;
            assert_true(strcmp(sku, last) > 0); /* strictly increasing: none twice */
            snprintf(last, sizeof last, "%s", sku);
            seen++;
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(page, "nextAfter");
        if (cJSON_IsNull(next)) {
            cJSON_Delete(page);
            break;
        }
        assert_string_equal(next->valuestring, last);
        snprintf(query, sizeof query, "?limit=10&after=%s", next->valuestring);
        cJSON_Delete(page);
    }
    assert_int_equal(seen, total);

    cJSON *shoes = list(t, t->sk_auth, "?category=Shoes&limit=500", 200);
    const cJSON *p;
    int nshoes = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(shoes, "products"))
    {
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "category")->valuestring, "Shoes");
        nshoes++;
    }
    assert_int_equal(nshoes, 9); /* 0, 3, …, 24 */
    cJSON_Delete(shoes);

    /* Bad parameters name themselves. */
    static const char *const bad[] = {"?limit=0", "?limit=501", "?limit=abc", "?after="};
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char path[256];
        pe_test_response_t r;
        products_path(path, sizeof path, t, bad[i]);
        call("GET", path, NULL, t->sk_auth, &r);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body.data, bad[i][1] == 'l' ? "limit:" : "after:"));
        pe_test_response_free(&r);
    }
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    char *a_before = fingerprint(&a), *b_before = fingerprint(&b);
    const char *body = "{\"products\":[{\"sku\":\"EVIL\",\"name\":\"x\",\"category\":\"x\","
                       "\"price\":1}]}";
    char pk_a[128];
    snprintf(pk_a, sizeof pk_a, "Authorization: Bearer %s", a.pk);
    /* B's secret key on A's store: neither read nor write. */
    put(&a, b.sk_auth, body, 403);
    list(&a, b.sk_auth, NULL, 403);
    /* A's publishable key is a storefront key: no admin route. */
    put(&a, pk_a, body, 403);
    list(&a, pk_a, NULL, 403);
    /* No credentials. */
    put(&a, NULL, body, 401);
    list(&a, NULL, NULL, 401);
    char *a_after = fingerprint(&a), *b_after = fingerprint(&b);
    assert_string_equal(a_before, a_after);
    assert_string_equal(b_before, b_after);

    /* Each store lists only its own products. */
    cJSON *pa = list(&a, a.sk_auth, "?limit=500", 200),
          *pb = list(&b, b.sk_auth, "?limit=500", 200);
    assert_non_null(find_sku(pa, "TEE-1"));
    assert_null(find_sku(pa, "KEEP"));
    assert_non_null(find_sku(pb, "KEEP"));
    assert_null(find_sku(pb, "TEE-1"));
    cJSON_Delete(pa);
    cJSON_Delete(pb);

    /* The C API: a store that does not exist, or a malformed id, writes nothing. */
    cJSON *one = cJSON_Parse("[{\"sku\":\"Z\",\"name\":\"z\",\"category\":\"z\",\"price\":1}]");
    pe_refusal_t err;
    size_t count = 99;
    assert_int_equal(
        pe_catalog_upsert(fx.pool, "00000000-0000-4000-8000-000000000000", one, &count, &err),
        PE_ENOTFOUND);
    assert_int_equal(count, 0);
    assert_int_equal(pe_catalog_upsert(fx.pool, "not-a-uuid", one, &count, &err), PE_ENOTFOUND);
    cJSON_Delete(one);
    free(a_before);
    free(b_before);
    free(a_after);
    free(b_after);
}

static void test_database_checks_agree(void **state)
{
    (void)state;
    /* What the validator refuses, the table refuses too (last line of defence). */
    static const char *const bad[] = {
        "'X1', 'n', 'c', -1, NULL, NULL, 'EUR'",
        "'X2', 'n', 'c', 1, -1, NULL, 'EUR'",
        "'X3', 'n', 'c', 1, NULL, -1, 'EUR'",
        "'X4', 'n', 'c', 1, NULL, NULL, 'eur'",
        "'', 'n', 'c', 1, NULL, NULL, 'EUR'",
        "'X6', E'a\\tb', 'c', 1, NULL, NULL, 'EUR'",
        "'X7', 'n', 'c', 1000000001, NULL, NULL, 'EUR'",
    };
    pe_db_conn_t *conn = NULL;
    assert_int_equal(pe_db_acquire(fx.pool, 5000, &conn), 0);
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO products (store_id, sku, name, category, price, cost, stock, "
                 "currency) VALUES ('%s', %s)",
                 a.id, bad[i]);
        int rc = pe_db_exec(conn, sql, 0, NULL, NULL);
        if (rc != PE_EINVAL)
            fail_msg("%s: rc %d (%s), want a CHECK violation", sql, rc, pe_db_conn_error(conn));
    }
    pe_db_release(fx.pool, conn);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&a, fx.pool, "Catalog A", "Europe/Berlin", "EUR", "a@example.com",
                        PASSWORD);
    pe_test_tenant_make(&b, fx.pool, "Catalog B", "Europe/Berlin", "EUR", "b@example.com",
                        PASSWORD);
    pe_test_server_start(&fx.server, fx.conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_and_read_back),
        cmocka_unit_test(test_all_or_nothing_and_field_named),
        cmocka_unit_test(test_pagination_and_category),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_database_checks_agree),
        cmocka_unit_test(test_nonfinite_numbers_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
