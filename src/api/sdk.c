/*
 * sdk.c — the storefront SDK's files (web/sdk/: pe.js, pe.d.ts, schema.mjs) under /sdk/, for
 * storefronts on any origin: the copy embedded at build time, or PE_WEB_DIR/sdk on disk while
 * the SDK is being worked on.
 *
 * Invariants:
 *  1. Only files under web/sdk/ are reachable: a name with a "..", "." or dot-file segment, an
 *     empty segment or a backslash never reaches the file system; it is a 404.
 *  2. A file is served with an explicit Content-Type (nosniff holds) and
 *     "Cache-Control: public, max-age=300"; a miss is a JSON 404 with no-store.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pe/api.h"
#include "routes.h"

#define SDK_DIR           "sdk/"
#define SDK_MAX_DISK_FILE (1u << 20)
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

static bool sdk_safe_name(const char *name)
{
    if (name[0] == '\0' || strchr(name, '\\'))
        return false;
    const char *seg = name;
    for (;;) {
        if (seg[0] == '.' || seg[0] == '/' || seg[0] == '\0')
            return false; /* "..", ".", dot-files, empty segments, a trailing slash */
        const char *slash = strchr(seg, '/');
        if (!slash)
            return true;
        seg = slash + 1;
    }
}

static int sdk_serve_embedded(pe_http_request_t *req, const char *path, const char *type)
{
    for (size_t i = 0; i < pe_embedded_web_count; i++) {
        if (strcmp(pe_embedded_web[i].path, path) == 0) {
            pe_http_set_header(req, "Cache-Control", SDK_CACHE_CONTROL);
            return pe_http_reply_static(req, 200, type, pe_embedded_web[i].data,
                                        pe_embedded_web[i].len);
        }
    }
    return PE_ENOTFOUND;
}

static int sdk_serve_disk(pe_http_request_t *req, const char *dir, const char *path,
                          const char *type)
{
    char full[4096];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, path) >= sizeof full)
        return PE_ENOTFOUND;
    int rc = PE_ENOTFOUND;
    char *data = NULL;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        goto out;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)SDK_MAX_DISK_FILE)
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
    pe_http_set_header(req, "Cache-Control", SDK_CACHE_CONTROL);
    rc = pe_http_reply(req, 200, type, data, got);
out:
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

int pe_api_sdk(pe_http_request_t *req)
{
    const char *name = pe_http_param(req, "file");
    const char *type = name && sdk_safe_name(name) ? sdk_content_type(name) : NULL;
    char path[512];
    int rc = PE_ENOTFOUND;
    if (type && (size_t)snprintf(path, sizeof path, SDK_DIR "%s", name) < sizeof path) {
        pe_app_t *app = pe_http_app(req);
        if (app->cfg && app->cfg->web_dir)
            rc = sdk_serve_disk(req, app->cfg->web_dir, path, type);
        else
            rc = sdk_serve_embedded(req, path, type);
    }
    if (rc == 0)
        return 0;
    if (pe_http_replied(req))
        return rc;
    pe_http_set_header(req, "Cache-Control", "no-store");
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, 404, "not_found", "no SDK file /sdk/%.200s",
                                   name ? name : "");
    return pe_http_reply_rc(req, rc, "cannot read /sdk/%.200s", name ? name : "");
}
