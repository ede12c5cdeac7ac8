/*
 * redis/url.c — the Redis URL parser (grammar in url.h).
 *
 * Invariants:
 *  1. The parser reads the URL only; it allocates nothing and keeps no state (thread-safe).
 *  2. Error messages name the part that is wrong but never include the password.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pe/core.h"
#include "url.h"

#define DEFAULT_PORT 6379
#define MAX_DB       999999

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (err && errlen) {
        n = snprintf(err, errlen, "redis URL: ");
        if (n < 0 || (size_t)n >= errlen)
            n = 0;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return PE_EINVAL;
}

/* Parses 1..maxdigits decimal digits s[0..n) into *out, within [lo, hi]. */
static int parse_uint(const char *s, size_t n, size_t maxdigits, long lo, long hi, int *out)
{
    long v = 0;

    if (n == 0 || n > maxdigits)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int parse_userinfo(const char *s, size_t n, pe_redis_url_t *out, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);

    if (!colon)
        return fail(err, errlen, "user info must be ':password' or 'user:password'");
    if (pe_percent_decode(s, (size_t)(colon - s), out->user, sizeof(out->user), false) < 0)
        return fail(err, errlen, "bad percent-encoding or too long a user name");
    if (pe_percent_decode(colon + 1, n - (size_t)(colon - s) - 1, out->password,
                          sizeof(out->password), false) < 0)
        return fail(err, errlen, "bad percent-encoding or too long a password");
    if (!out->password[0])
        return fail(err, errlen, "empty password (leave out the '@' part for none)");
    return 0;
}

static int parse_hostport(const char *s, size_t n, pe_redis_url_t *out, char *err, size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hostlen, portlen = 0;

    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(err, errlen, "unterminated '[' in IPv6 host");
        host = s + 1;
        hostlen = (size_t)(close - host);
        for (size_t i = 0; i < hostlen; i++) {
            if (pe_hex_digit(host[i]) < 0 && host[i] != ':' && host[i] != '.')
                return fail(err, errlen, "bad character in IPv6 host");
        }
        if (close + 1 < s + n) {
            if (close[1] != ':')
                return fail(err, errlen, "unexpected text after ']'");
            port = close + 2;
            portlen = n - (size_t)(port - s);
        }
    } else {
        const char *colon = memchr(s, ':', n);
        hostlen = colon ? (size_t)(colon - s) : n;
        if (colon) {
            port = colon + 1;
            portlen = n - hostlen - 1;
            if (memchr(port, ':', portlen))
                return fail(err, errlen, "IPv6 hosts must be written in brackets: [::1]");
        }
        for (size_t i = 0; i < hostlen; i++) {
            if (!host_char(host[i]))
                return fail(err, errlen, "bad character in host");
        }
    }
    if (hostlen == 0)
        return fail(err, errlen, "missing host");
    if (hostlen >= sizeof(out->host))
        return fail(err, errlen, "host is too long");
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    out->port = DEFAULT_PORT;
    if (port && parse_uint(port, portlen, 5, 1, 65535, &out->port) != 0)
        return fail(err, errlen, "port must be a number from 1 to 65535");
    return 0;
}

static int parse_tcp(const char *s, pe_redis_url_t *out, char *err, size_t errlen)
{
    const char *slash = strchr(s, '/');
    size_t authlen = slash ? (size_t)(slash - s) : strlen(s);
    const char *at = NULL;
    int rc;

    if (strpbrk(s, "?#"))
        return fail(err, errlen,
                    "query strings and fragments are not supported (the db goes in the path: "
                    "redis://host:6379/2)");
    for (size_t i = 0; i < authlen; i++) {
        if (s[i] == '@')
            at = s + i; /* the last '@' ends the user info */
    }
    if (at) {
        rc = parse_userinfo(s, (size_t)(at - s), out, err, errlen);
        if (rc != 0)
            return rc;
        authlen -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    rc = parse_hostport(s, authlen, out, err, errlen);
    if (rc != 0)
        return rc;
    if (slash && slash[1] && parse_uint(slash + 1, strlen(slash + 1), 6, 0, MAX_DB, &out->db) != 0)
        return fail(err, errlen, "database must be a number from 0 to %d: redis://host:6379/2",
                    MAX_DB);
    return 0;
}

static int parse_unix(const char *s, pe_redis_url_t *out, char *err, size_t errlen)
{
    const char *q = strchr(s, '?');
    size_t pathlen = q ? (size_t)(q - s) : strlen(s);

    if (s[0] != '/')
        return fail(err, errlen, "unix socket path must be absolute: unix:///run/redis.sock");
    if (strchr(s, '#') || strchr(s, '@'))
        return fail(err, errlen, "unix URLs take only a path and ?db=N");
    if (pathlen < 2)
        return fail(err, errlen, "missing unix socket path");
    if (pathlen >= sizeof(out->path))
        return fail(err, errlen, "unix socket path is longer than %zu bytes",
                    sizeof(out->path) - 1);
    memcpy(out->path, s, pathlen);
    out->path[pathlen] = '\0';
    out->is_unix = true;
    if (!q)
        return 0;
    for (const char *p = q + 1; *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n < 3 || strncmp(p, "db=", 3) != 0)
            return fail(err, errlen, "unknown parameter \"%.*s\" (only db=N is supported)",
                        (int)(n > 32 ? 32 : n), p);
        if (parse_uint(p + 3, n - 3, 6, 0, MAX_DB, &out->db) != 0)
            return fail(err, errlen, "db must be a number from 0 to %d", MAX_DB);
        p += n + (amp ? 1 : 0);
    }
    return 0;
}

int pe_redis_url_parse(const char *url, pe_redis_url_t *out, char *err, size_t errlen)
{
    size_t n = url ? strlen(url) : 0;

    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (n == 0)
        return fail(err, errlen, "empty");
    if (n > PE_REDIS_URL_MAX)
        return fail(err, errlen, "longer than %d bytes", PE_REDIS_URL_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return fail(err, errlen, "contains a space or a control character");
    }
    if (strncasecmp(url, "redis://", 8) == 0)
        return parse_tcp(url + 8, out, err, errlen);
    if (strncasecmp(url, "unix://", 7) == 0)
        return parse_unix(url + 7, out, err, errlen);
    if (strncasecmp(url, "rediss://", 9) == 0)
        return fail(err, errlen, "TLS (rediss://) is not supported by this build");
    return fail(err, errlen, "scheme must be redis:// or unix://");
}
