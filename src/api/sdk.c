/*
 * sdk.c — the storefront SDK's files (web/sdk/: pe.js, pe.d.ts, schema.mjs) under /sdk/, for
 * storefronts on any origin: the copy embedded at build time, or PE_WEB_DIR/sdk on disk while
 * the SDK is being worked on.
 *
 * Storefronts load /sdk/pe.js on every page view from the fixed URL merchants paste, so it
 * cannot be fingerprinted: browsers keep it 5 minutes, then revalidate it with its ETag (a 304
 * of a few hundred bytes), so a new build reaches every storefront within 5 minutes. The embedded
 * copy is sent gzip-compressed (compressed at build time) to clients that accept it; see web.c
 * for the ETag, gzip and 304 rules, which are shared.
 *
 * Invariants:
 *  1. Only files under web/sdk/ are reachable: a name with a "..", "." or dot-file segment, an
 *     empty segment or a backslash never reaches the file system; it is a 404.
 *  2. A file is served with an explicit Content-Type (nosniff holds), a strong ETag and
 *     "Cache-Control: public, max-age=300" ("no-cache" from PE_WEB_DIR, where it changes under
 *     us); a miss is a JSON 404 with no-store.
 */
#include <stdio.h>
#include <string.h>

#include "pe/api.h"
#include "routes.h"

#define SDK_DIR           "sdk/"
#define SDK_CACHE_CONTROL "public, max-age=300"

static const struct {
    const char *suffix;
    const char *type;
} SDK_TYPES[] = {
    {".d.ts", "text/plain; charset=utf-8"}, /* TypeScript declarations: text, never script */
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".md", "text/plain; charset=utf-8"},
};

/* The Content-Type for name, or NULL when the SDK serves no such kind of file. */
static const char *sdk_content_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < PE_ARRAY_LEN(SDK_TYPES); i++) {
        size_t s = strlen(SDK_TYPES[i].suffix);
        if (n > s && strcmp(name + n - s, SDK_TYPES[i].suffix) == 0)
            return SDK_TYPES[i].type;
    }
    return NULL;
}

int pe_api_sdk(pe_http_request_t *req)
{
    const pe_app_t *app = pe_http_app(req);
    bool web_dir = app->cfg && app->cfg->web_dir;
    const char *name = pe_http_param(req, "file");
    const char *type = name && pe_api_web_path_safe(name) ? sdk_content_type(name) : NULL;
    char path[512];
    int rc = PE_ENOTFOUND;
    if (type && (size_t)snprintf(path, sizeof path, SDK_DIR "%s", name) < sizeof path)
        rc = pe_api_serve_file(req, path, type, web_dir ? "no-cache" : SDK_CACHE_CONTROL);
    if (rc == 0)
        return 0;
    if (pe_http_replied(req))
        return rc;
    pe_http_set_header(req, "Cache-Control", "no-store");
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, PE_ENOTFOUND, "not_found", "no SDK file /sdk/%.200s",
                                   name ? name : "");
    return pe_http_reply_error(req, rc, NULL, "cannot read /sdk/%.200s", name ? name : "");
}
