/*
 * test_audit_export.c — GET /api/v1/stores/{storeId}/audit/export streams a large audit trail
 * in bounded memory, and its time bounds are exact.
 *
 * Invariants the tests hold the server to:
 *  1. 200 000 events (generated in SQL; the hash chain does not matter to the export) come out
 *     as exactly 200 000 CSV records after the header, in (timestamp, id) order, while the
 *     server's resident memory grows by less than 64 MB (VmRSS sampled from /proc/<pid>/status
 *     while the body streams, and VmHWM after). bench/audit/ does the same with 1 000 000.
 *  2. from is inclusive, to exclusive; to=1970-01-01T00:00:00Z is a bound like any other (it
 *     selects nothing), not "no upper bound".
 *
 * The server runs with a small AddressSanitizer quarantine: under the sanitizer, freed memory
 * is held back (256 MB by default) and would read as growth; a real leak or an unbounded buffer
 * still shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "pe/tenancy.h"
#include "pe_test.h"

#define EVENTS        200000
#define MAX_GROWTH_KB (64 * 1024)

static pe_test_fixture_t fx;
static pe_test_tenant_t store;

/* A field of /proc/<pid>/status in kB, or -1. */
static long proc_kb(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

typedef struct {
    long long bytes, records; /* records: CRLF-terminated lines after the header */
    bool in_header;
    long long next_sample;
    long max_rss_kb;
    char first[64], last_line[1024];
    size_t last_len;
} sink_t;

static size_t sink(char *p, size_t size, size_t n, void *ctx)
{
    sink_t *s = ctx;
    size_t len = size * n;
    for (size_t i = 0; i < len; i++) {
        if (s->last_len < sizeof s->last_line - 1)
            s->last_line[s->last_len++] = p[i];
        if (p[i] != '\n')
            continue;
        s->last_line[s->last_len] = '\0';
        if (s->in_header) {
            s->in_header = false;
        } else {
            if (s->records == 0)
                snprintf(s->first, sizeof s->first, "%.25s", s->last_line);
            s->records++;
        }
        s->last_len = 0;
    }
    s->bytes += (long long)len;
    if (s->bytes >= s->next_sample) {
        long rss = proc_kb(fx.server.pid, "VmRSS");
        if (rss > s->max_rss_kb)
            s->max_rss_kb = rss;
        s->next_sample = s->bytes + 256 * 1024;
    }
    return len;
}

/* Streams the export with query; returns the HTTP status and fills *s. */
static long export(const char *query, sink_t *s)
{
    char url[512], h[160];
    memset(s, 0, sizeof *s);
    s->in_header = true;
    snprintf(url, sizeof url, "%s/api/v1/stores/%s/audit/export%s", fx.server.base_url, store.id,
             query);
    snprintf(h, sizeof h, "%s", store.sk_auth);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hl = curl_slist_append(NULL, h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 280L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        fail_msg("export%s: %s", query, curl_easy_strerror(cc));
    return status;
}

static void test_export_bounded_memory(void **state)
{
    (void)state;
    sink_t s;
    /* warm up: pool connections, first-use allocations */
    assert_int_equal(export("?format=csv&to=1970-01-02T00:00:00Z", &s), 200);
    long before = proc_kb(fx.server.pid, "VmRSS"), hwm_before = proc_kb(fx.server.pid, "VmHWM");
    assert_true(before > 0);
    int64_t t0 = pe_now_mono_us();
    assert_int_equal(export("?format=csv", &s), 200);
    double secs = (double)(pe_now_mono_us() - t0) / 1e6;
    long hwm = proc_kb(fx.server.pid, "VmHWM");
    long peak = s.max_rss_kb;
    if (hwm > hwm_before && hwm > peak)
        peak = hwm; /* the peak happened between samples */
    fprintf(stderr,
            "# exported %lld records, %.1f MB in %.1f s; server RSS %ld kB before, peak %ld kB "
            "(growth %ld kB), VmHWM %ld -> %ld kB\n",
            s.records, (double)s.bytes / 1048576.0, secs, before, peak, peak - before, hwm_before,
            hwm);
    assert_int_equal(s.records, EVENTS);
    assert_string_equal(s.first, "c000000000000000000000001"); /* (timestamp, id) order */
    assert_int_equal(strncmp(s.last_line, "c000000000000000000200000,", 26), 0);
    if (peak - before >= MAX_GROWTH_KB)
        fail_msg("the server grew by %ld kB exporting %d events (limit %d kB)", peak - before,
                 EVENTS, MAX_GROWTH_KB);
}

static void test_export_bounds(void **state)
{
    (void)state;
    sink_t s;
    /* to=epoch is a real bound: nothing is older than 1970 */
    assert_int_equal(export("?format=csv&to=1970-01-01T00:00:00Z", &s), 200);
    assert_int_equal(s.records, 0);
    /* from inclusive, to exclusive: event i sits at base + (i-1) ms */
    char *base = pe_test_sql(fx.conninfo, "SELECT to_char(date_trunc('month', now()) AT TIME ZONE "
                                          "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    char *end = pe_test_sql(fx.conninfo, "SELECT to_char((date_trunc('month', now()) + interval "
                                         "'1 second') AT TIME ZONE 'UTC', "
                                         "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    char q[256];
    snprintf(q, sizeof q, "?format=csv&from=%s&to=%s", base, end);
    assert_int_equal(export(q, &s), 200);
    assert_int_equal(s.records, 1000);
    snprintf(q, sizeof q, "?format=csv&from=1970-01-01T00:00:00Z&to=%s", end);
    assert_int_equal(export(q, &s), 200);
    assert_int_equal(s.records, 1000);
    /* JSON lines: no header, so every line is a record and the first counts as one */
    snprintf(q, sizeof q, "?format=json&to=%s", end);
    assert_int_equal(export(q, &s), 200);
    assert_int_equal(s.records + 1, 1000);
    free(base);
    free(end);
}

static int group_setup(void **state)
{
    *state = &fx;
    pe_test_fixture_open(&fx, PE_LOG_WARN, 2);
    pe_test_tenant_make(&store, fx.pool, "Audit export", "Europe/Berlin", "EUR", NULL, NULL);
    /* the current month's partition holds them all: base + 0 … 200 s */
    char q[2048];
    snprintf(q, sizeof q,
             "INSERT INTO audit_events (store_id, occurred_at, id, changeset_id, seq, actor_type,"
             " actor_id, action, previous_state, new_state, reason, metadata, prev_hash, hash)"
             " SELECT '%s'::uuid, date_trunc('month', now()) + (i - 1) * interval '1 millisecond',"
             " 'c' || lpad(i::text, 24, '0'), 'c' || lpad((i / 8)::text, 24, '0'), i %% 8 + 1,"
             " 'autopilot', 'autopilot-loop', 'measured', 'ACTIVE', 'MEASURING',"
             " 'Measurement window ' || i || ' opened, \"quoted\", with a comma',"
             " jsonb_build_object('version', i, 'confirmed', false, 'guardrails',"
             "   jsonb_build_object('checked', true, 'overridden', false, 'violations',"
             "   '[]'::jsonb), 'metrics', jsonb_build_object('conversionRate', 0.0231,"
             "   'sessions', 18234, 'revenue', 99812.5)),"
             " NULL, lpad(to_hex(i), 64, '0') FROM generate_series(1, %d) i",
             store.id, EVENTS);
    free(pe_test_sql(fx.conninfo, q));
    free(pe_test_sql(fx.conninfo, "ANALYZE audit_events")); /* as autovacuum soon would */
    char asan[512];
    const char *have = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%squarantine_size_mb=4", have ? have : "",
             have && *have ? ":" : "");
    pe_test_server_start(&fx.server, fx.conninfo,
                         (const char *const[]){"PE_HTTP_THREADS=2", asan, NULL});
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_bounds),
        cmocka_unit_test(test_export_bounded_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, pe_test_fixture_teardown);
}
