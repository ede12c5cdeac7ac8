/*
 * redis/url.h — the parsed form of a Redis URL. Private to src/redis and its tests; free of
 * hiredis so the parser can be tested without a server.
 *
 * Accepted (anything else is refused with a one-line reason that never repeats the password):
 *   redis://[[user]:password@]host[:port][/db]     host: name, IPv4, or [IPv6]; port 1-65535
 *                                                   (default 6379); db 0-999999 (default 0)
 *   unix:///absolute/path[?db=N]
 * The password may be percent-encoded (%XX).
 *
 * Invariants:
 *  1. On success exactly one of host / path is non-empty, and port is set only with host.
 *  2. All strings are NUL-terminated; password and user are "" when absent.
 */
#ifndef PE_REDIS_URL_H
#define PE_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#define PE_REDIS_URL_MAX 2048

typedef struct {
    bool is_unix;
    char host[256];
    int port;
    char path[108]; /* sizeof(sockaddr_un.sun_path) */
    int db;
    char user[128];
    char password[512];
} pe_redis_url_t;

/* Parses url into *out. Returns 0 or PE_EINVAL with a reason in err. Thread-safe. */
int pe_redis_url_parse(const char *url, pe_redis_url_t *out, char *err, size_t errlen);

#endif /* PE_REDIS_URL_H */
