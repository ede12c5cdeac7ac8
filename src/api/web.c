/*
 * web.c — the dashboard's static files: the copy embedded at build time, or PE_WEB_DIR on disk
 * for front-end work without rebuilding. Client-side routes (paths without a file extension)
 * answer index.html so deep links survive a reload.
 *
 * Invariants:
 *  1. A path with a "..", "." or dot-file segment, a backslash, or anything under the API
 *     prefixes never reaches the file system; it is a 404.
 *  2. Files are served with an explicit Content-Type, so nosniff holds.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pe/api.h"
#include "routes.h"

#define MAX_DISK_FILE (8u << 20)

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

/* index.html is revalidated on every load so a new build shows at once; assets may be reused
 * for a while. Set only on the reply that serves the file, never on a miss. */
static const char *cache_control(const char *path)
{
    return strcmp(path, "index.html") == 0 ? "no-cache" : "public, max-age=300";
}

static int serve_embedded(pe_http_request_t *req, const char *path, const char *type,
                          const char *cache)
{
    for (size_t i = 0; i < pe_embedded_web_count; i++) {
        if (strcmp(pe_embedded_web[i].path, path) == 0) {
            pe_http_set_header(req, "Cache-Control", cache);
            return pe_http_reply_static(req, 200, type, pe_embedded_web[i].data,
                                        pe_embedded_web[i].len);
        }
    }
    return PE_ENOTFOUND;
}

static int serve_disk(pe_http_request_t *req, const char *dir, const char *path, const char *type,
                      const char *cache)
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
    pe_http_set_header(req, "Cache-Control", cache);
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
    return serve_embedded(req, path, type, cache);
}

static int serve(pe_http_request_t *req, const char *path)
{
    return pe_api_serve_file(req, path, content_type(path), cache_control(path));
}

int pe_api_web(pe_http_request_t *req)
{
    const char *path = pe_http_param(req, "path");
    if (!path || path[0] == '\0')
        path = "index.html";
    /* Static routes get no default Cache-Control; a miss must not be cached like a file. */
    if (reserved(path) || !pe_api_web_path_safe(path)) {
        pe_http_set_header(req, "Cache-Control", "no-store");
        return pe_http_reply_error(req, 404, "not_found", "no route for %s /%.200s",
                                   pe_http_method(req), path);
    }
    int rc = serve(req, path);
    if (rc == PE_ENOTFOUND && !has_extension(path))
        rc = serve(req, "index.html"); /* a client-side route */
    if (rc == PE_ENOTFOUND) {
        pe_http_set_header(req, "Cache-Control", "no-store");
        return pe_http_reply_error(req, 404, "not_found", "no file /%.200s", path);
    }
    if (rc != 0 && !pe_http_replied(req)) {
        pe_http_set_header(req, "Cache-Control", "no-store");
        return pe_http_reply_rc(req, rc, "cannot read /%.200s", path);
    }
    return 0;
}
