/*
 * test_web.c — the dashboard's and the SDK's static files over HTTP, against profit-engine
 * child processes: one serving the copy embedded at build time, one serving PE_WEB_DIR (a
 * scratch copy of a few files of web/ that the test edits while the server runs).
 *
 * Invariants the tests hold the server to (src/api/web.c, sdk.c, cmake/embed_run.cmake):
 *  1. Every file reply has a strong ETag; If-None-Match with it (or W/ it, or *) is a 304 with
 *     no body and the same Cache-Control and ETag; any other tag is a 200.
 *  2. The gzip variant is sent only to a client that accepts gzip with q > 0 (not to
 *     "gzip;q=0", "br", "identity" or nobody), with its own ETag and Vary: Accept-Encoding on
 *     both variants; a file without a variant (a font) is never gzip.
 *  3. index.html is no-cache, references every local asset by a fingerprint that is the
 *     asset's current hash, and carries an import map from each plain module URL to its
 *     fingerprinted URL, allowed by a CSP hash of exactly that map; fingerprinted URLs are
 *     immutable for a year, a stale fingerprint gets the current bytes with no-cache.
 *  4. Deep links answer index.html; traversal and dot-files are a 404 with no-store.
 *  5. /sdk/pe.js: public, max-age=300, an ETag, gzip when accepted, CORS.
 *  6. PE_WEB_DIR: the file as on disk (no import map, no gzip), no-cache everywhere, an ETag from
 *     the content (equal to the embedded one for an unchanged file) that follows an edit
 *     without a restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "pe/http.h"
#include "pe_test.h"

#define IMMUTABLE  "public, max-age=31536000, immutable"
#define SDK_CACHE  "public, max-age=300"
#define WEB_FILE   "tests/integration/test_web.c"
#define MAX_ASSETS 64

static char *conninfo;
static pe_test_server_t embedded, disk;
static char disk_dir[256];

/* ---- helpers --------------------------------------------------------------------------------- */

/* The whole file web/<rel> of the source tree (malloc'ed, *len set); fails when unreadable. */
static char *source_file(const char *rel, size_t *len)
{
    const char *self = __FILE__;
    const char *at = strstr(self, WEB_FILE);
    assert_non_null(at);
    char path[1024];
    snprintf(path, sizeof path, "%.*sweb/%s", (int)(at - self), self, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    pe_buf_t b = PE_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(pe_buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    return pe_buf_steal(&b);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s", path);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void copy_to_disk_dir(const char *rel)
{
    size_t len;
    char *data = source_file(rel, &len);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", disk_dir, rel);
    write_file(path, data, len);
    free(data);
}

/* A strong ETag of 16 lower-case hex digits, with "-gz" when gzip. */
static void expect_etag(const char *etag, bool gzip, const char *what)
{
    size_t n = strlen(etag);
    size_t want = 18 + (gzip ? 3 : 0);
    bool ok = n == want && etag[0] == '"' && etag[n - 1] == '"' &&
              strspn(etag + 1, "0123456789abcdef") == 16 &&
              (!gzip || strncmp(etag + 17, "-gz", 3) == 0);
    if (!ok)
        fail_msg("%s: ETag %s is not a strong %s tag", what, etag, gzip ? "gzip" : "identity");
}

/* Checks that If-None-Match: etag (and its weak form, and *) answer 304 with no body and the
 * 200's Cache-Control and ETag, and that another tag answers 200. */
static void expect_revalidation(const pe_test_server_t *s, const char *path, const char *accept,
                                const char *etag, const char *cache)
{
    char inm[128], weak[128], ae[128];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    snprintf(weak, sizeof weak, "If-None-Match: \"nope\", W/%s", etag);
    snprintf(ae, sizeof ae, "Accept-Encoding: %s", accept ? accept : "identity");
    const char *variants[] = {inm, weak, "If-None-Match: *"};
    for (size_t i = 0; i < PE_ARRAY_LEN(variants); i++) {
        pe_test_response_t r;
        pe_test_request(s, "GET", path, (const char *const[]){variants[i], ae, NULL}, &r);
        if (r.status != 304)
            fail_msg("%s with %s: status %ld, want 304", path, variants[i], r.status);
        assert_int_equal(r.body.len, 0);
        assert_string_equal(pe_test_header(&r, "ETag"), etag);
        assert_string_equal(pe_test_header(&r, "Cache-Control"), cache);
        assert_string_equal(pe_test_header(&r, "Content-Encoding"), "");
        pe_test_response_free(&r);
    }
    pe_test_response_t r;
    pe_test_request(s, "GET", path,
                    (const char *const[]){"If-None-Match: \"0000000000000000\"", ae, NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.body.len > 0);
    pe_test_response_free(&r);
}

/* The value of attr="…" starting at p (just past the opening quote), copied into out. */
static void quoted_value(const char *p, char *out, size_t outlen)
{
    const char *end = strchr(p, '"');
    assert_non_null(end);
    snprintf(out, outlen, "%.*s", (int)(end - p), p);
}

typedef struct {
    char url[256]; /* /path?v=<hash> */
} asset_ref_t;

/* Every href="…" / src="…" of body that names a local file (an absolute path with an
 * extension, not a route); fails the test when one is not fingerprinted. */
static size_t local_references(const char *body, asset_ref_t *refs, size_t max)
{
    size_t n = 0;
    static const char *const ATTRS[] = {"href=\"", "src=\""};
    for (size_t a = 0; a < PE_ARRAY_LEN(ATTRS); a++) {
        for (const char *p = strstr(body, ATTRS[a]); p; p = strstr(p + 1, ATTRS[a])) {
            char value[256];
            quoted_value(p + strlen(ATTRS[a]), value, sizeof value);
            const char *last = strrchr(value, '/');
            if (value[0] != '/' || !last || !strchr(last, '.'))
                continue; /* a route such as /performance */
            const char *v = strstr(value, "?v=");
            if (!v || strlen(v + 3) != 16 || strspn(v + 3, "0123456789abcdef") != 16)
                fail_msg("index.html references %s without a fingerprint", value);
            assert_true(n < max);
            snprintf(refs[n++].url, sizeof refs[0].url, "%s", value);
        }
    }
    return n;
}

/* ---- the embedded copy ----------------------------------------------------------------------- */

static void test_etag_and_304(void **state)
{
    (void)state;
    /* A leaf file: served byte for byte as it is in web/. */
    size_t len;
    char *want = source_file("lib/api.js", &len);
    pe_test_response_t r;
    pe_test_request(&embedded, "GET", "/lib/api.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Content-Type"), "text/javascript; charset=utf-8");
    assert_int_equal(r.body.len, len);
    assert_memory_equal(r.body.data, want, len);
    free(want);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", pe_test_header(&r, "ETag"));
    expect_etag(etag, false, "/lib/api.js");
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache"); /* not fingerprinted */
    pe_test_response_free(&r);
    expect_revalidation(&embedded, "/lib/api.js", NULL, etag, "no-cache");

    /* HEAD: the same headers, no body. */
    pe_test_request(&embedded, "HEAD", "/lib/api.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "ETag"), etag);
    assert_int_equal(r.body.len, 0);
    pe_test_response_free(&r);
}

static void test_gzip_negotiation(void **state)
{
    (void)state;
    static const struct {
        const char *accept; /* NULL: no header */
        bool gzip;
    } cases[] = {
        {NULL, false},
        {"gzip", true},
        {"gzip, deflate, br, zstd", true},
        {"GZIP;q=0.5", true},
        {"*", true},
        {"x-gzip", true},
        {"gzip;q=0", false},
        {"gzip; q=0.000, *", false},
        {"br", false},
        {"identity", false},
        {"*;q=0", false},
    };
    pe_test_response_t plain;
    pe_test_request(&embedded, "GET", "/app.js", NULL, &plain);
    assert_int_equal(plain.status, 200);
    char plain_etag[64];
    snprintf(plain_etag, sizeof plain_etag, "%s", pe_test_header(&plain, "ETag"));
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        char ae[128];
        snprintf(ae, sizeof ae, "Accept-Encoding: %s", cases[i].accept ? cases[i].accept : "");
        pe_test_response_t r;
        pe_test_request(&embedded, "GET", "/app.js",
                        cases[i].accept ? (const char *const[]){ae, NULL} : NULL, &r);
        assert_int_equal(r.status, 200);
        const char *what = cases[i].accept ? cases[i].accept : "(no Accept-Encoding)";
        if (strcmp(pe_test_header(&r, "Content-Encoding"), cases[i].gzip ? "gzip" : "") != 0)
            fail_msg("/app.js with %s: Content-Encoding '%s'", what,
                     pe_test_header(&r, "Content-Encoding"));
        assert_string_equal(pe_test_header(&r, "Vary"), "Accept-Encoding");
        expect_etag(pe_test_header(&r, "ETag"), cases[i].gzip, what);
        if (cases[i].gzip) {
            assert_true(r.body.len > 2 && r.body.len < plain.body.len);
            assert_int_equal((unsigned char)r.body.data[0], 0x1f); /* the gzip magic */
            assert_int_equal((unsigned char)r.body.data[1], 0x8b);
            /* The same file: the gzip tag is the identity tag plus -gz. */
            assert_int_equal(strncmp(pe_test_header(&r, "ETag"), plain_etag, 17), 0);
        } else {
            assert_int_equal(r.body.len, plain.body.len);
            assert_memory_equal(r.body.data, plain.body.data, plain.body.len);
        }
        pe_test_response_free(&r);
    }
    pe_test_response_free(&plain);

    /* Each variant revalidates against its own tag only. */
    char gz_etag[64];
    snprintf(gz_etag, sizeof gz_etag, "%.17s-gz\"", plain_etag);
    expect_revalidation(&embedded, "/app.js", "gzip", gz_etag, "no-cache");
    char inm[128];
    snprintf(inm, sizeof inm, "If-None-Match: %s", plain_etag);
    pe_test_response_t r;
    pe_test_request(&embedded, "GET", "/app.js",
                    (const char *const[]){inm, "Accept-Encoding: gzip", NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Content-Encoding"), "gzip");
    pe_test_response_free(&r);

    /* A font is already compressed: no gzip variant, no Vary. */
    pe_test_request(&embedded, "GET",
                    "/vendor/jetbrains-mono/jetbrains-mono-latin-400-normal.woff2",
                    (const char *const[]){"Accept-Encoding: gzip", NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Content-Type"), "font/woff2");
    assert_string_equal(pe_test_header(&r, "Content-Encoding"), "");
    assert_string_equal(pe_test_header(&r, "Vary"), "");
    expect_etag(pe_test_header(&r, "ETag"), false, "woff2");
    pe_test_response_free(&r);
}

/* The import map of index.html: every entry "/x": "/x?v=<hash>" with hash the ETag of /x, and
 * the page's CSP allows exactly that inline script. Returns the number of entries. */
static size_t check_import_map(const pe_test_response_t *index)
{
    static const char open[] = "<script type=\"importmap\">";
    const char *start = strstr(index->body.data, open);
    assert_non_null(start);
    start += strlen(open);
    const char *end = strstr(start, "</script>");
    assert_non_null(end);
    size_t len = (size_t)(end - start);

    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)start, len);
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
    char source[128];
    snprintf(source, sizeof source, "script-src 'self' 'sha256-%s';", b64);
    const char *csp = pe_test_header(index, "Content-Security-Policy");
    if (!strstr(csp, source) || strstr(csp, "unsafe-inline"))
        fail_msg("the CSP does not allow the import map by its hash %s: %s", b64, csp);

    cJSON *map = NULL;
    char err[128];
    if (pe_json_parse(start, len, &map, err, sizeof err) != 0)
        fail_msg("the import map is not JSON (%s): %.*s", err, (int)len, start);
    const cJSON *imports = cJSON_GetObjectItemCaseSensitive(map, "imports");
    assert_true(cJSON_IsObject(imports));
    size_t n = 0;
    bool has_api = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, imports)
    {
        assert_true(cJSON_IsString(e));
        const char *key = e->string, *value = e->valuestring;
        size_t klen = strlen(key);
        if (key[0] != '/' || strncmp(value, key, klen) != 0 || strncmp(value + klen, "?v=", 3) != 0)
            fail_msg("import map entry %s → %s", key, value);
        assert_null(strstr(key, "sdk/"));  /* the SDK keeps its fixed URLs */
        assert_null(strstr(key, "demo/")); /* another site */
        has_api = has_api || strcmp(key, "/lib/api.js") == 0;
        pe_test_response_t r;
        pe_test_request(&embedded, "GET", key, NULL, &r);
        assert_int_equal(r.status, 200);
        char want[64];
        snprintf(want, sizeof want, "\"%s\"", value + klen + 3);
        if (strcmp(pe_test_header(&r, "ETag"), want) != 0)
            fail_msg("import map maps %s to %s, but its ETag is %s", key, value,
                     pe_test_header(&r, "ETag"));
        pe_test_response_free(&r);
        n++;
    }
    assert_true(has_api);
    cJSON_Delete(map);
    return n;
}

static void test_index_and_fingerprints(void **state)
{
    (void)state;
    pe_test_response_t index;
    pe_test_request(&embedded, "GET", "/", NULL, &index);
    assert_int_equal(index.status, 200);
    assert_string_equal(pe_test_header(&index, "Cache-Control"), "no-cache");
    char index_etag[64];
    snprintf(index_etag, sizeof index_etag, "%s", pe_test_header(&index, "ETag"));
    expect_etag(index_etag, false, "index.html");
    expect_revalidation(&embedded, "/", NULL, index_etag, "no-cache");

    static asset_ref_t refs[MAX_ASSETS];
    size_t n = local_references(index.body.data, refs, MAX_ASSETS);
    assert_true(n >= 6); /* stylesheet, font, module preloads, the entry module */
    for (size_t i = 0; i < n; i++) {
        pe_test_response_t r;
        pe_test_request(&embedded, "GET", refs[i].url,
                        (const char *const[]){"Accept-Encoding: gzip", NULL}, &r);
        if (r.status != 200 || strcmp(pe_test_header(&r, "Cache-Control"), IMMUTABLE) != 0)
            fail_msg("%s: %ld, Cache-Control '%s'", refs[i].url, r.status,
                     pe_test_header(&r, "Cache-Control"));
        const char *hash = strstr(refs[i].url, "?v=") + 3;
        char etag[64];
        snprintf(etag, sizeof etag, "%s", pe_test_header(&r, "ETag"));
        assert_int_equal(strncmp(etag + 1, hash, 16), 0);
        expect_revalidation(&embedded, refs[i].url, "gzip", etag, IMMUTABLE);
        pe_test_response_free(&r);
    }
    assert_true(check_import_map(&index) >= n);

    /* The stylesheet's fonts are fingerprinted too, with the font's current hash. */
    const char *css = strstr(index.body.data, "href=\"/app.css?v=");
    assert_non_null(css);
    char css_url[64];
    quoted_value(css + strlen("href=\""), css_url, sizeof css_url);
    pe_test_response_t r;
    pe_test_request(&embedded, "GET", css_url, NULL, &r);
    const char *font = strstr(r.body.data, "url(\"/vendor/jetbrains-mono/");
    assert_non_null(font);
    char font_url[256];
    quoted_value(font + strlen("url(\""), font_url, sizeof font_url);
    assert_non_null(strstr(font_url, ".woff2?v="));
    pe_test_response_free(&r);
    pe_test_request(&embedded, "GET", font_url, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), IMMUTABLE);
    pe_test_response_free(&r);

    /* A stale fingerprint: the current bytes, never immutable. */
    char stale[128];
    snprintf(stale, sizeof stale, "%.*s?v=0123456789abcdef", (int)strcspn(css_url, "?"), css_url);
    pe_test_response_t fresh;
    pe_test_request(&embedded, "GET", css_url, NULL, &fresh);
    char fresh_etag[64];
    snprintf(fresh_etag, sizeof fresh_etag, "%s", pe_test_header(&fresh, "ETag"));
    pe_test_request(&embedded, "GET", stale, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");
    assert_string_equal(pe_test_header(&r, "ETag"), fresh_etag);
    assert_int_equal(r.body.len, fresh.body.len);
    assert_memory_equal(r.body.data, fresh.body.data, r.body.len);
    pe_test_response_free(&r);
    pe_test_response_free(&fresh);

    /* A deep link is the same document, revalidated by the same ETag. */
    pe_test_request(&embedded, "GET", "/funnel?store=x", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, index.body.len);
    assert_memory_equal(r.body.data, index.body.data, r.body.len);
    assert_string_equal(pe_test_header(&r, "ETag"), index_etag);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");
    pe_test_response_free(&r);
    expect_revalidation(&embedded, "/performance", NULL, index_etag, "no-cache");
    pe_test_response_free(&index);

    /* Another site's page: fingerprinted assets, no import map (it loads no modules). */
    pe_test_request(&embedded, "GET", "/demo/index.html", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");
    assert_null(strstr(r.body.data, "importmap"));
    assert_non_null(strstr(r.body.data, "href=\"demo.css?v="));
    assert_non_null(strstr(r.body.data, "src=\"/sdk/pe.js\"")); /* the SDK's fixed URL */
    assert_null(strstr(pe_test_header(&r, "Content-Security-Policy"), "sha256"));
    pe_test_response_free(&r);
}

static void test_misses_and_traversal(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/..%2F..%2Fetc%2Fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/lib/%2e%2e/%2e%2e/x.js",
        "/.hidden.js",
        "/lib/missing.js",
        "/lib/missing.js?v=0123456789abcdef",
        "/sdk/nope.js",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(paths); i++) {
        pe_test_response_t r;
        pe_test_request(&embedded, "GET", paths[i],
                        (const char *const[]){"Accept-Encoding: gzip", NULL}, &r);
        if (r.status != 404 && r.status != 400)
            fail_msg("%s: status %ld, want 404", paths[i], r.status);
        assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-store");
        assert_string_equal(pe_test_header(&r, "ETag"), "");
        pe_test_response_free(&r);
    }
    /* Raw, so that no client normalises the dot segments away. */
    pe_buf_t out = PE_BUF_INIT;
    static const char raw[] =
        "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_true(pe_test_raw(embedded.port, raw, sizeof raw - 1, 0, 5000, &out) > 0);
    if (!strstr(out.data, "HTTP/1.1 404") && !strstr(out.data, "HTTP/1.1 400"))
        fail_msg("raw traversal answered: %.200s", out.data);
    assert_null(strstr(out.data, "root:"));
    pe_buf_free(&out);
}

static void test_sdk(void **state)
{
    (void)state;
    size_t len;
    char *want = source_file("sdk/pe.js", &len);
    pe_test_response_t r;
    pe_test_request(&embedded, "GET", "/sdk/pe.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, len);
    assert_memory_equal(r.body.data, want, len);
    free(want);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), SDK_CACHE);
    assert_string_equal(pe_test_header(&r, "Access-Control-Allow-Origin"), "*");
    assert_string_equal(pe_test_header(&r, "Vary"), "Accept-Encoding");
    char etag[64];
    snprintf(etag, sizeof etag, "%s", pe_test_header(&r, "ETag"));
    expect_etag(etag, false, "/sdk/pe.js");
    pe_test_response_free(&r);
    expect_revalidation(&embedded, "/sdk/pe.js", NULL, etag, SDK_CACHE);

    pe_test_request(&embedded, "GET", "/sdk/pe.js",
                    (const char *const[]){"Accept-Encoding: gzip", NULL}, &r);
    assert_string_equal(pe_test_header(&r, "Content-Encoding"), "gzip");
    assert_true(r.body.len < len / 2);
    snprintf(etag, sizeof etag, "%s", pe_test_header(&r, "ETag"));
    expect_etag(etag, true, "/sdk/pe.js gzip");
    assert_string_equal(pe_test_header(&r, "Cache-Control"), SDK_CACHE);
    pe_test_response_free(&r);
    expect_revalidation(&embedded, "/sdk/pe.js", "gzip", etag, SDK_CACHE);

    /* A v is meaningless here: merchants' fixed URL is the only one. */
    pe_test_request(&embedded, "GET", "/sdk/pe.js?v=0123456789abcdef", NULL, &r);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), SDK_CACHE);
    pe_test_response_free(&r);
}

/* ---- PE_WEB_DIR ------------------------------------------------------------------------------ */

static void test_disk_mode(void **state)
{
    (void)state;
    size_t len;
    char *want = source_file("index.html", &len);
    pe_test_response_t r;
    pe_test_request(&disk, "GET", "/", (const char *const[]){"Accept-Encoding: gzip", NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, len); /* as on disk: no import map, no fingerprints */
    assert_memory_equal(r.body.data, want, len);
    free(want);
    assert_string_equal(pe_test_header(&r, "Content-Encoding"), "");
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");
    assert_null(strstr(pe_test_header(&r, "Content-Security-Policy"), "sha256"));
    pe_test_response_free(&r);

    /* An unchanged file has the embedded copy's ETag; fingerprints mean nothing on disk. */
    pe_test_response_t e;
    pe_test_request(&embedded, "GET", "/lib/api.js", NULL, &e);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", pe_test_header(&e, "ETag"));
    pe_test_response_free(&e);
    pe_test_request(&disk, "GET", "/lib/api.js?v=0123456789abcdef",
                    (const char *const[]){"Accept-Encoding: gzip", NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "ETag"), etag);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");
    assert_string_equal(pe_test_header(&r, "Content-Encoding"), "");
    pe_test_response_free(&r);
    expect_revalidation(&disk, "/lib/api.js", "gzip", etag, "no-cache");

    /* An edit shows at once, under a new ETag, without a restart. */
    char path[512];
    snprintf(path, sizeof path, "%s/lib/api.js", disk_dir);
    static const char edited[] = "export const edited = true;\n";
    write_file(path, edited, sizeof edited - 1);
    char inm[128];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    pe_test_request(&disk, "GET", "/lib/api.js", (const char *const[]){inm, NULL}, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, sizeof edited - 1);
    assert_memory_equal(r.body.data, edited, sizeof edited - 1);
    expect_etag(pe_test_header(&r, "ETag"), false, "edited file");
    assert_string_not_equal(pe_test_header(&r, "ETag"), etag);
    pe_test_response_free(&r);

    /* The SDK from disk is not kept for 5 minutes either. */
    pe_test_request(&disk, "GET", "/sdk/pe.js", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-cache");
    expect_etag(pe_test_header(&r, "ETag"), false, "/sdk/pe.js from disk");
    pe_test_response_free(&r);

    /* Deep links and misses behave as embedded. */
    pe_test_request(&disk, "GET", "/funnel", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(pe_test_header(&r, "Content-Type"), "text/html; charset=utf-8");
    pe_test_response_free(&r);
    pe_test_request(&disk, "GET", "/lib/missing.js", NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(pe_test_header(&r, "Cache-Control"), "no-store");
    pe_test_response_free(&r);

    /* A folder inside the web folder that links outside it is not followed (nor a linked
     * file): only what lies in the web folder is served. */
    char outside[] = "/tmp/pe-test-web-outside-XXXXXX", link[512], file[600];
    assert_non_null(mkdtemp(outside));
    snprintf(file, sizeof file, "%s/secret.js", outside);
    write_file(file, "secret\n", 7);
    snprintf(link, sizeof link, "%s/vendor", disk_dir);
    assert_int_equal(symlink(outside, link), 0);
    pe_test_request(&disk, "GET", "/vendor/secret.js", NULL, &r);
    assert_int_equal(r.status, 404);
    pe_test_response_free(&r);
    snprintf(link, sizeof link, "%s/lib/linked.js", disk_dir);
    assert_int_equal(symlink(file, link), 0);
    pe_test_request(&disk, "GET", "/lib/linked.js", NULL, &r);
    assert_int_equal(r.status, 404);
    pe_test_response_free(&r);
    assert_int_equal(unlink(link), 0);
    snprintf(link, sizeof link, "%s/vendor", disk_dir);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(outside), 0);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    conninfo = pe_test_db_create_migrated();
    snprintf(disk_dir, sizeof disk_dir, "/tmp/pe-test-web-XXXXXX");
    if (!mkdtemp(disk_dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    char sub[512];
    snprintf(sub, sizeof sub, "%s/lib", disk_dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof sub, "%s/sdk", disk_dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    copy_to_disk_dir("index.html");
    copy_to_disk_dir("lib/api.js");
    copy_to_disk_dir("sdk/pe.js");
    char web_dir[300];
    snprintf(web_dir, sizeof web_dir, "PE_WEB_DIR=%s", disk_dir);
    pe_test_server_start(&embedded, conninfo, (const char *const[]){"PE_HTTP_THREADS=2", NULL});
    pe_test_server_start(&disk, conninfo,
                         (const char *const[]){"PE_HTTP_THREADS=1", web_dir, NULL});
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (embedded.pid > 0)
        pe_test_server_stop(&embedded);
    if (disk.pid > 0)
        pe_test_server_stop(&disk);
    static const char *const files[] = {"index.html", "lib/api.js", "sdk/pe.js", "lib", "sdk", ""};
    for (size_t i = 0; i < PE_ARRAY_LEN(files); i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", disk_dir, files[i]);
        if (remove(path) != 0 && errno != ENOENT)
            fprintf(stderr, "test_web: cannot remove %s: %s\n", path, strerror(errno));
    }
    pe_test_db_drop(conninfo);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_and_304),
        cmocka_unit_test(test_gzip_negotiation),
        cmocka_unit_test(test_index_and_fingerprints),
        cmocka_unit_test(test_misses_and_traversal),
        cmocka_unit_test(test_sdk),
        cmocka_unit_test(test_disk_mode),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
