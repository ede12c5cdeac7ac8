/*
 * web.c — the dashboard's static files: the copy embedded at build time, or PE_WEB_DIR on disk
 * for front-end work without rebuilding. Client-side routes (paths without a file extension)
 * answer index.html so deep links survive a reload. The SDK's files (sdk.c) go through
 * pe_api_serve_file below with their own Cache-Control.
 *
 * The embedded copy is prepared by the build (cmake/embed_run.cmake): every file has a content
 * hash and, when it is ≥ 10% smaller, a gzip -9n variant; pages and stylesheets reference the
 * other files by fingerprinted URLs, /app.css?v=<hash>, and index.html carries an import map
 * from every module's plain URL ('/lib/api.js', which the relative imports of the JavaScript
 * resolve to) to its fingerprinted one. So a new build is seen at once (index.html is always
 * revalidated and names new hashes), and a file that did not change keeps its URL and is never
 * fetched again. Fonts are fingerprinted the same way: the build rewrites the url()s of the CSS.
 *
 *   request (embedded)                    Cache-Control                          notes
 *   a page (*.html) or a deep link        no-cache                               + ETag → 304
 *   /file?v=<the file's current hash>     public, max-age=31536000, immutable
 *   /file?v=<any other value>             no-cache                               stale: see
 *   /file                                 no-cache                               embedded_cache
 *   /sdk/… (sdk.c)                        public, max-age=300                    + ETag → 304
 *   PE_WEB_DIR, anything                  no-cache                               files change under
 * us
 *
 * Invariants:
 *  1. A path with a "..", "." or dot-file segment, a backslash, or anything under the API
 *     prefixes never reaches the file system; it is a 404 with no-store.
 *  2. Files are served with an explicit Content-Type, so nosniff holds.
 *  3. Every file reply has a strong ETag naming the exact bytes sent: "<hash>" for the file as
 *     it is, "<hash>-gz" for its gzip variant (two representations, two validators). An
 *     If-None-Match that matches it is answered 304 with no body and the same Cache-Control,
 *     ETag and Vary as the 200.
 *  4. gzip only when the client accepts it (q > 0, pe_http_accepts_encoding) and only from the
 *     bytes compressed at build time; nothing is compressed per request. Every reply of a file
 *     that has a gzip variant says Vary: Accept-Encoding, whichever variant it sends.
 *  5. "immutable" only when the request's v equals the hash of the bytes sent, so a cache can
 *     never pin other bytes under a fingerprint.
 *  6. A page whose import map is inline gets a Content-Security-Policy that allows exactly that
 *     script by its hash (and nothing else inline).
 *  7. PE_WEB_DIR files are read on every request: ETag from their content (the same hash as the
 *     embedded copy of an unchanged file), no gzip, no fingerprints, no long caching.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "pe/api.h"
#include "routes.h"

#define MAX_DISK_FILE (8u << 20)
#define IMMUTABLE     "public, max-age=31536000, immutable"
#define REVALIDATE    "no-cache"
#define ETAG_MAX      32 /* "<16 hex>-gz" and the quotes */
#define HASH_HEX      16

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".map", "application/json"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < PE_ARRAY_LEN(TYPES); i++)
            if (strcmp(dot, TYPES[i].ext) == 0)
                return TYPES[i].type;
    return "application/octet-stream";
}

bool pe_api_web_path_safe(const char *path)
{
    if (strchr(path, '\\'))
        return false;
    const char *seg = path;
    for (;;) {
        if (seg[0] == '.')
            return false; /* "..", "." and dot-files */
        const char *slash = strchr(seg, '/');
        if (slash == seg)
            return false; /* empty segment */
        if (!slash)
            return true;
        seg = slash + 1;
    }
}

static bool reserved(const char *path)
{
    static const char *const PREFIXES[] = {"api/", "v1/", "ofrep/", "sdk/"};
    for (size_t i = 0; i < PE_ARRAY_LEN(PREFIXES); i++)
        if (strncmp(path, PREFIXES[i], strlen(PREFIXES[i])) == 0)
            return true;
    return strcmp(path, "api") == 0 || strcmp(path, "v1") == 0;
}

static bool has_extension(const char *path)
{
    const char *last = strrchr(path, '/');
    return strchr(last ? last + 1 : path, '.') != NULL;
}

static bool is_page(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcmp(path + n - 5, ".html") == 0;
}

static const pe_embedded_asset_t *find_embedded(const char *path)
{
    for (size_t i = 0; i < pe_embedded_web_count; i++)
        if (strcmp(pe_embedded_web[i].path, path) == 0)
            return &pe_embedded_web[i];
    return NULL;
}

/*
 * The Cache-Control of an embedded file (the table at the top of this file).
 *
 * A v that is not the file's hash is a stale fingerprint: a tab opened before a deploy asking
 * for a file that has changed since, or, during a rolling deploy, a new index.html whose asset
 * request reached a server still on the old build. Either way the only bytes this server has are
 * its current ones, and they are sent with no-cache: never immutable under a hash they do not
 * have (invariant 5), yet usable, and fixed by the next revalidation. A redirect to the current
 * fingerprint would cost a round trip on exactly that path and, in the rolling deploy, only
 * bounce a newer hash to the older file.
 */
static const char *embedded_cache(pe_http_request_t *req, const pe_embedded_asset_t *a)
{
    if (is_page(a->path))
        return REVALIDATE;
    const char *v = pe_http_query(req, "v");
    if (v && strcmp(v, a->hash) == 0)
        return IMMUTABLE;
    return REVALIDATE;
}

/* Sets Cache-Control and ETag and, when If-None-Match holds etag, replies 304 (*replied).
 * Returns 0 or PE_ENOMEM. */
static int validate(pe_http_request_t *req, const char *type, const char *cache, const char *etag,
                    bool *replied)
{
    *replied = false;
    if (pe_http_set_header(req, "Cache-Control", cache) != 0 ||
        pe_http_set_header(req, "ETag", etag) != 0)
        return PE_ENOMEM;
    if (!pe_http_none_match(pe_http_header(req, "If-None-Match"), etag))
        return 0;
    *replied = true;
    return pe_http_reply_static(req, 304, type, "", 0);
}

static int serve_embedded(pe_http_request_t *req, const pe_embedded_asset_t *a, const char *type,
                          const char *cache)
{
    bool gzip = a->gzip && pe_http_accepts_encoding(pe_http_header(req, "Accept-Encoding"), "gzip");
    char etag[ETAG_MAX];
    snprintf(etag, sizeof etag, "\"%.*s%s\"", HASH_HEX, a->hash, gzip ? "-gz" : "");
    if (a->gzip && pe_http_set_header(req, "Vary", "Accept-Encoding") != 0)
        return PE_ENOMEM;
    if (a->script_hash) {
        char csp[1024];
        if ((size_t)snprintf(csp, sizeof csp, PE_HTTP_CSP_HEAD " %s" PE_HTTP_CSP_TAIL,
                             a->script_hash) >= sizeof csp)
            return PE_EINTERNAL;
        if (pe_http_set_header(req, "Content-Security-Policy", csp) != 0)
            return PE_ENOMEM;
    }
    bool replied;
    int rc = validate(req, type, cache, etag, &replied);
    if (rc != 0 || replied)
        return rc;
    if (!gzip)
        return pe_http_reply_static(req, 200, type, a->data, a->len);
    if (pe_http_set_header(req, "Content-Encoding", "gzip") != 0)
        return PE_ENOMEM;
    return pe_http_reply_static(req, 200, type, a->gzip, a->gzip_len);
}

/* Opens dir/path for reading, confined to dir: every component of path is opened relative to
 * the one before with O_NOFOLLOW, so a symbolic link anywhere below dir — a folder as well as
 * the file — is refused rather than followed out of it (O_NOFOLLOW on the whole path checks
 * only its last component). dir itself may be a link. Returns the descriptor or -1. */
static int open_confined(const char *dir, const char *path)
{
    char part[256];
    int at = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    while (at >= 0) {
        size_t n = strcspn(path, "/");
        if (n == 0 || n >= sizeof part || (n == 2 && path[0] == '.' && path[1] == '.') ||
            (n == 1 && path[0] == '.')) {
            close(at);
            return -1;
        }
        memcpy(part, path, n);
        part[n] = '\0';
        bool last = path[n] == '\0';
        int next = openat(at, part, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (last ? 0 : O_DIRECTORY));
        close(at);
        if (last)
            return next;
        at = next;
        path += n + 1;
    }
    return -1;
}

static int serve_disk(pe_http_request_t *req, const char *dir, const char *path, const char *type,
                      const char *cache)
{
    int rc = PE_ENOTFOUND;
    char *data = NULL;
    int fd = open_confined(dir, path);
    if (fd < 0)
        goto out;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_DISK_FILE)
        goto out;
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        rc = PE_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n <= 0) {
            rc = PE_EIO;
            goto out;
        }
        got += (size_t)n;
    }
    /* The same hash as the build's, so an unchanged file keeps its ETag across the two modes. */
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[HASH_HEX + 1], etag[ETAG_MAX];
    crypto_hash_sha256(digest, (const unsigned char *)data, got);
    sodium_bin2hex(hex, sizeof hex, digest, HASH_HEX / 2);
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    bool replied;
    rc = validate(req, type, cache, etag, &replied);
    if (rc == 0 && !replied)
        rc = pe_http_reply(req, 200, type, data, got);
out:
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

int pe_api_serve_file(pe_http_request_t *req, const char *path, const char *type, const char *cache)
{
    pe_app_t *app = pe_http_app(req);
    if (app->cfg && app->cfg->web_dir)
        return serve_disk(req, app->cfg->web_dir, path, type, cache);
    const pe_embedded_asset_t *a = find_embedded(path);
    return a ? serve_embedded(req, a, type, cache) : PE_ENOTFOUND;
}

static int serve(pe_http_request_t *req, const char *path)
{
    const char *type = content_type(path);
    pe_app_t *app = pe_http_app(req);
    if (app->cfg && app->cfg->web_dir)
        return serve_disk(req, app->cfg->web_dir, path, type, REVALIDATE);
    const pe_embedded_asset_t *a = find_embedded(path);
    return a ? serve_embedded(req, a, type, embedded_cache(req, a)) : PE_ENOTFOUND;
}

int pe_api_web(pe_http_request_t *req)
{
    const char *path = pe_http_param(req, "path");
    if (!path || path[0] == '\0')
        path = "index.html";
    /* Static routes get no default Cache-Control; a miss must not be cached like a file. */
    if (reserved(path) || !pe_api_web_path_safe(path)) {
        pe_http_set_header(req, "Cache-Control", "no-store");
        return pe_http_reply_error(req, PE_ENOTFOUND, "not_found", "no route for %s /%.200s",
                                   pe_http_method(req), path);
    }
    int rc = serve(req, path);
    if (rc == PE_ENOTFOUND && !has_extension(path))
        rc = serve(req, "index.html"); /* a client-side route */
    if (rc == PE_ENOTFOUND) {
        pe_http_set_header(req, "Cache-Control", "no-store");
        return pe_http_reply_error(req, PE_ENOTFOUND, "not_found", "no file /%.200s", path);
    }
    if (rc != 0 && !pe_http_replied(req)) {
        pe_http_set_header(req, "Cache-Control", "no-store");
        return pe_http_reply_error(req, rc, NULL, "cannot read /%.200s", path);
    }
    return 0;
}
