/*
 * router.c — method + path pattern matching, and percent-decoding of paths and query strings.
 *
 * Invariants:
 *  1. Pure: no I/O, no globals; matching is read-only on the router, so any number of threads
 *     may match at once once routes are added.
 *  2. A path is split on '/' before decoding, so "%2F" inside a segment stays data and never
 *     becomes a separator.
 *  3. Decoded segments and query values never contain NUL and are valid UTF-8; anything else is
 *     PE_EINVAL (a 400), never a crash.
 *  4. Precedence: at the first segment where two matching patterns differ, a literal beats a
 *     parameter and a parameter beats a trailing wildcard. Wildcard-only matches never produce
 *     405 (a catch-all GET must not turn unknown POSTs into "wrong method"); and a path that a
 *     route without a wildcard owns is never answered by a wildcard route of another method:
 *     GET /api/v1/auth/login is 405 (Allow: POST), not the dashboard's 404.
 */
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"

#define MAX_SEGMENTS 32

typedef enum { SEG_LITERAL = 2, SEG_PARAM = 1, SEG_WILDCARD = 0 } seg_kind_t;

typedef struct {
    seg_kind_t kind;
    const char *text; /* literal text or parameter name (points into pattern_copy) */
} segment_t;

typedef struct {
    pe_http_route_t route;
    char *pattern_copy;
    size_t nsegs;
    segment_t segs[MAX_SEGMENTS];
} entry_t;

struct pe_http_router {
    entry_t *entries;
    size_t count, cap;
};

pe_http_router_t *pe_http_router_new(void)
{
    return calloc(1, sizeof(pe_http_router_t));
}

void pe_http_router_free(pe_http_router_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->entries[i].pattern_copy);
    free(r->entries);
    free(r);
}

size_t pe_http_router_count(const pe_http_router_t *r)
{
    return r->count;
}

const pe_http_route_t *pe_http_router_route(const pe_http_router_t *r, size_t index)
{
    return index < r->count ? &r->entries[index].route : NULL;
}

static int compile(entry_t *e)
{
    const char *pattern = e->route.pattern;
    if (pattern[0] != '/')
        return PE_EINVAL;
    e->pattern_copy = strdup(pattern + 1);
    if (!e->pattern_copy)
        return PE_ENOMEM;
    e->nsegs = 0;
    if (e->pattern_copy[0] == '\0')
        return 0; /* "/" */
    /* strtok_r would merge empty segments: "/dir/" must not silently mean "/dir". */
    if (strstr(pattern, "//") || pattern[strlen(pattern) - 1] == '/')
        return PE_EINVAL;
    char *save = NULL;
    char *p = e->pattern_copy;
    for (char *tok = strtok_r(p, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (e->nsegs == MAX_SEGMENTS)
            return PE_EINVAL;
        segment_t *s = &e->segs[e->nsegs++];
        size_t n = strlen(tok);
        if (n >= 2 && tok[0] == '{' && tok[n - 1] == '}') {
            tok[n - 1] = '\0';
            s->text = tok + 1;
            s->kind = SEG_PARAM;
            size_t nn = n - 2;
            if (nn >= 2 && s->text[nn - 1] == '*') {
                tok[n - 2] = '\0';
                s->kind = SEG_WILDCARD;
            }
            if (s->text[0] == '\0')
                return PE_EINVAL;
        } else {
            s->text = tok;
            s->kind = SEG_LITERAL;
        }
    }
    for (size_t i = 0; i + 1 < e->nsegs; i++)
        if (e->segs[i].kind == SEG_WILDCARD)
            return PE_EINVAL; /* a wildcard must be last */
    size_t nparams = 0;
    for (size_t i = 0; i < e->nsegs; i++)
        nparams += e->segs[i].kind != SEG_LITERAL;
    return nparams <= PE_HTTP_MAX_PARAMS ? 0 : PE_EINVAL;
}

int pe_http_router_add(pe_http_router_t *r, const pe_http_route_t *route)
{
    if (!route->method || !route->pattern || !route->handler)
        return PE_EINVAL;
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->entries[i].route.method, route->method) == 0 &&
            strcmp(r->entries[i].route.pattern, route->pattern) == 0)
            return PE_EINVAL;
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        entry_t *n = realloc(r->entries, cap * sizeof *n);
        if (!n)
            return PE_ENOMEM;
        r->entries = n;
        r->cap = cap;
    }
    entry_t *e = &r->entries[r->count];
    memset(e, 0, sizeof *e);
    e->route = *route;
    if (!e->route.name)
        e->route.name = e->route.pattern;
    int rc = compile(e);
    if (rc != 0) {
        free(e->pattern_copy);
        return rc;
    }
    r->count++;
    return 0;
}

typedef struct {
    size_t n;
    const char *raw[MAX_SEGMENTS + 1]; /* raw segment starts */
    size_t rawlen[MAX_SEGMENTS + 1];
    const char *dec[MAX_SEGMENTS + 1];
    size_t declen[MAX_SEGMENTS + 1];
} split_path_t;

/* Splits and decodes path into storage; returns 0, PE_EINVAL or PE_ENOTFOUND (too deep). */
static int split_path(const char *path, size_t len, split_path_t *sp, char *storage)
{
    if (len == 0 || path[0] != '/' || len > PE_HTTP_MAX_PATH)
        return PE_EINVAL;
    sp->n = 0;
    if (len == 1)
        return 0;
    size_t pos = 1, used = 0;
    for (;;) {
        const char *slash = memchr(path + pos, '/', len - pos);
        size_t end = slash ? (size_t)(slash - path) : len;
        if (sp->n == MAX_SEGMENTS + 1)
            return PE_ENOTFOUND;
        long d = pe_percent_decode_text(path + pos, end - pos, storage + used, false);
        if (d < 0)
            return PE_EINVAL;
        sp->raw[sp->n] = path + pos;
        sp->rawlen[sp->n] = end - pos;
        sp->dec[sp->n] = storage + used;
        sp->declen[sp->n] = (size_t)d;
        sp->n++;
        used += (size_t)d + 1;
        if (!slash)
            break;
        pos = end + 1;
    }
    return 0;
}

/* Compares the path to e; on a match fills kinds (the per-segment precedence key). */
static bool path_matches(const entry_t *e, const split_path_t *sp, seg_kind_t *kinds)
{
    size_t i = 0;
    for (; i < e->nsegs; i++) {
        const segment_t *s = &e->segs[i];
        kinds[i] = s->kind;
        if (s->kind == SEG_WILDCARD)
            return true; /* takes the rest, possibly nothing */
        if (i >= sp->n)
            return false;
        if (s->kind == SEG_LITERAL) {
            if (strlen(s->text) != sp->declen[i] || memcmp(s->text, sp->dec[i], sp->declen[i]) != 0)
                return false;
        } else if (sp->declen[i] == 0) {
            return false;
        }
    }
    return i == sp->n;
}

static bool better(const seg_kind_t *a, size_t na, const seg_kind_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] > b[i];
    return na < nb; /* equal keys: only a wildcard capturing nothing is longer */
}

static bool method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void allow_add(char *allow, size_t allowlen, const char *method)
{
    if (!allow || allowlen == 0)
        return;
    size_t ml = strlen(method);
    /* skip duplicates: the list is ", "-separated */
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += ml)
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
            return;
    size_t cur = strlen(allow);
    size_t need = cur + (cur ? 2 : 0) + ml + 1;
    if (need > allowlen)
        return;
    if (cur)
        memcpy(allow + cur, ", ", 2), cur += 2;
    memcpy(allow + cur, method, ml + 1);
}

int pe_http_router_match(const pe_http_router_t *r, const char *method, const char *path,
                         size_t pathlen, pe_route_match_t *m, char *allow, size_t allowlen)
{
    split_path_t sp;
    if (allow && allowlen)
        allow[0] = '\0';
    int rc = split_path(path, pathlen, &sp, m->storage);
    if (rc != 0)
        return rc;

    const entry_t *best = NULL;
    seg_kind_t best_kinds[MAX_SEGMENTS], kinds[MAX_SEGMENTS];
    size_t best_n = 0;
    bool other_method = false;
    for (size_t i = 0; i < r->count; i++) {
        const entry_t *e = &r->entries[i];
        if (!path_matches(e, &sp, kinds))
            continue;
        if (!method_matches(e->route.method, method)) {
            bool wildcard = e->nsegs > 0 && e->segs[e->nsegs - 1].kind == SEG_WILDCARD;
            if (!wildcard) {
                other_method = true;
                allow_add(allow, allowlen, e->route.method);
                if (strcmp(e->route.method, "GET") == 0)
                    allow_add(allow, allowlen, "HEAD");
            }
            continue;
        }
        if (!best || better(kinds, e->nsegs, best_kinds, best_n)) {
            best = e;
            best_n = e->nsegs;
            memcpy(best_kinds, kinds, e->nsegs * sizeof kinds[0]);
        }
    }
    bool best_wildcard =
        best && best->nsegs > 0 && best->segs[best->nsegs - 1].kind == SEG_WILDCARD;
    if (!best || (best_wildcard && other_method)) {
        if (other_method)
            return PE_ROUTER_WRONG_METHOD;
        return PE_ENOTFOUND;
    }

    m->route = &best->route;
    m->route_index = (size_t)(best - r->entries);
    m->nparams = 0;
    for (size_t i = 0; i < best->nsegs; i++) {
        const segment_t *s = &best->segs[i];
        if (s->kind == SEG_LITERAL)
            continue;
        m->names[m->nparams] = s->text;
        if (s->kind == SEG_PARAM) {
            m->values[m->nparams++] = sp.dec[i];
            continue;
        }
        /* Wildcard: the decoded remaining segments joined by '/'. They are laid out
         * consecutively in storage separated by NULs, so joining is replacing those NULs. */
        if (i >= sp.n) {
            m->values[m->nparams++] = "";
            continue;
        }
        char *start = (char *)sp.dec[i];
        for (size_t k = i; k + 1 < sp.n; k++)
            start[(sp.dec[k] - start) + sp.declen[k]] = '/';
        m->values[m->nparams++] = start;
    }
    return PE_ROUTER_MATCH;
}
