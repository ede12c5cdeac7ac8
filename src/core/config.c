/*
 * config.c — the read-only configuration, built once from PE_* environment variables.
 *
 * Invariants:
 *  1. Every variable has a default, a parser and bounds in the VARS table; nothing else reads
 *     the environment.
 *  2. The first bad value stops loading with a one-line message that names the variable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pe/core.h"

typedef enum { VAR_STRING, VAR_LISTEN, VAR_LEVEL, VAR_UINT, VAR_DIR, VAR_CIDRS } var_kind_t;

typedef struct {
    const char *name;
    var_kind_t kind;
    const char *default_value; /* NULL: leave unset */
    size_t offset;
    unsigned min, max; /* VAR_UINT bounds */
} var_t;

#define FIELD(f) offsetof(pe_config_t, f)

static const var_t VARS[] = {
    {"PE_DATABASE_URL", VAR_STRING, "dbname=profit_engine", FIELD(database_url), 0, 0},
    {"PE_REDIS_URL", VAR_STRING, "redis://127.0.0.1:6379", FIELD(redis_url), 0, 0},
    {"PE_LISTEN", VAR_LISTEN, "127.0.0.1:8080", 0, 0, 0},
    {"PE_LOG_LEVEL", VAR_LEVEL, "info", FIELD(log_level), 0, 0},
    {"PE_WEB_DIR", VAR_DIR, NULL, FIELD(web_dir), 0, 0},
    {"PE_HTTP_THREADS", VAR_UINT, "0", FIELD(http_threads), 0, 256},
    {"PE_MAX_CONNECTIONS", VAR_UINT, "1024", FIELD(max_connections), 1, 100000},
    {"PE_CONNECTION_TIMEOUT", VAR_UINT, "30", FIELD(conn_timeout_s), 1, 3600},
    {"PE_HEADER_TIMEOUT", VAR_UINT, "10", FIELD(header_timeout_s), 1, 300},
    {"PE_BODY_TIMEOUT", VAR_UINT, "30", FIELD(body_timeout_s), 1, 3600},
    {"PE_DB_POOL_SIZE", VAR_UINT, "16", FIELD(db_pool_size), 1, 1000},
    {"PE_SHUTDOWN_GRACE", VAR_UINT, "8", FIELD(shutdown_grace_s), 1, 9},
    {"PE_COLLECTOR_WRITERS", VAR_UINT, "2", FIELD(collector_writers), 1, 8},
    {"PE_COLLECTOR_WINDOW_MS", VAR_UINT, "2", FIELD(collector_window_ms), 1, 100},
    {"PE_COLLECTOR_STORE_SHARE", VAR_UINT, "50", FIELD(collector_store_share), 1, 100},
    {"PE_EVENTS_RETENTION_DAYS", VAR_UINT, "400", FIELD(events_retention_days), 8, 3650},
    {"PE_FLAGS_POLL_MS", VAR_UINT, "1000", FIELD(flags_poll_ms), 100, 2000},
    {"PE_APPROVAL_TIMEOUT_HOURS", VAR_UINT, "168", FIELD(approval_timeout_h), 1, 8760},
    {"PE_NOTIFY_INTERVAL_S", VAR_UINT, "5", FIELD(notify_interval_s), 1, 86400},
    {"PE_MEASURE_INTERVAL_S", VAR_UINT, "300", FIELD(measure_interval_s), 10, 86400},
    {"PE_WEBHOOK_URL", VAR_STRING, NULL, FIELD(webhook_url), 0, 0},
    {"PE_WEBHOOK_SECRET", VAR_STRING, NULL, FIELD(webhook_secret), 0, 0},
    {"PE_JOBS", VAR_STRING, "all", FIELD(jobs), 0, 0},
    {"PE_TRUSTED_PROXIES", VAR_CIDRS, "", FIELD(trusted_proxies), 0, 0},
    {"PE_RATE_KEY", VAR_UINT, "2000", FIELD(rate_key), 0, 1000000},
    {"PE_RATE_ADDRESS", VAR_UINT, "1000", FIELD(rate_address), 0, 1000000},
};

int pe_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return PE_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return PE_EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= hostlen)
        return PE_EINVAL;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return PE_EINVAL;
    unsigned long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return PE_EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return PE_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    if (*s == '\0' || strlen(s) > 9)
        return PE_EINVAL;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return PE_EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v < min || v > max)
        return PE_EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* The value as it may appear inside a one-line message: at most 200 bytes, control bytes shown
 * as '?', so a value cannot break the line or forge another variable's message. */
static const char *printable(const char *value, char *out, size_t outlen)
{
    size_t n = 0;
    for (; value[n] && n + 1 < outlen && n < 200; n++)
        out[n] = (unsigned char)value[n] < 0x20 || value[n] == 0x7f ? '?' : value[n];
    out[n] = '\0';
    return out;
}

static int load_var(pe_config_t *cfg, const var_t *v, const char *value, char *err, size_t errlen)
{
    char *base = (char *)cfg;
    char shown[201];
    switch (v->kind) {
    case VAR_STRING: {
        if (strlen(value) > 4096) {
            snprintf(err, errlen, "%s: value longer than 4096 bytes", v->name);
            return PE_EINVAL;
        }
        char *copy = strdup(value);
        if (!copy)
            return PE_ENOMEM;
        *(char **)(base + v->offset) = copy;
        return 0;
    }
    case VAR_DIR: {
        struct stat st;
        if (stat(value, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: '%s' is not a directory", v->name,
                     printable(value, shown, sizeof shown));
            return PE_EINVAL;
        }
        char *copy = strdup(value);
        if (!copy)
            return PE_ENOMEM;
        *(char **)(base + v->offset) = copy;
        return 0;
    }
    case VAR_LISTEN:
        if (pe_parse_listen(value, cfg->listen_host, sizeof cfg->listen_host, &cfg->listen_port) !=
            0) {
            snprintf(err, errlen, "%s: '%s' is not host:port (port 0..65535)", v->name,
                     printable(value, shown, sizeof shown));
            return PE_EINVAL;
        }
        return 0;
    case VAR_LEVEL:
        if (pe_log_level_parse(value, (pe_log_level_t *)(base + v->offset)) != 0) {
            snprintf(err, errlen, "%s: '%s' is not one of debug, info, warn, error", v->name,
                     printable(value, shown, sizeof shown));
            return PE_EINVAL;
        }
        return 0;
    case VAR_CIDRS: {
        size_t off = 0, len = 0;
        int rc =
            pe_cidr_list_parse(value, (pe_cidr_list_t *)(void *)(base + v->offset), &off, &len);
        if (rc == PE_ETOOBIG) {
            snprintf(err, errlen, "%s: more than %d entries", v->name, PE_CIDR_LIST_MAX);
            return PE_EINVAL;
        }
        if (rc != 0) {
            char entry[201];
            snprintf(entry, sizeof entry, "%.*s", (int)(len < 200 ? len : 200), value + off);
            snprintf(err, errlen,
                     "%s: '%s' is not an IPv4 or IPv6 address or CIDR block (10.0.0.0/8, "
                     "fd00::/8; no bits set past the prefix)",
                     v->name, printable(entry, shown, sizeof shown));
            return PE_EINVAL;
        }
        return 0;
    }
    case VAR_UINT:
        if (parse_uint(value, v->min, v->max, (unsigned *)(base + v->offset)) != 0) {
            snprintf(err, errlen, "%s: '%s' is not a whole number in %u..%u", v->name,
                     printable(value, shown, sizeof shown), v->min, v->max);
            return PE_EINVAL;
        }
        return 0;
    }
    return PE_EINTERNAL;
}

int pe_config_load(pe_config_t *cfg, const char *(*lookup)(const char *name, void *ctx), void *ctx,
                   char *err, size_t errlen)
{
    int rc = 0;
    memset(cfg, 0, sizeof *cfg);
    if (errlen)
        err[0] = '\0';
    for (size_t i = 0; i < PE_ARRAY_LEN(VARS); i++) {
        const char *value = lookup(VARS[i].name, ctx);
        if (!value)
            value = VARS[i].default_value;
        if (!value)
            continue;
        rc = load_var(cfg, &VARS[i], value, err, errlen);
        if (rc != 0)
            goto out;
    }
out:
    if (rc != 0)
        pe_config_free(cfg);
    if (rc == PE_ENOMEM)
        snprintf(err, errlen, "out of memory while reading configuration");
    return rc;
}

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

int pe_config_from_env(pe_config_t *cfg, char *err, size_t errlen)
{
    return pe_config_load(cfg, env_lookup, NULL, err, errlen);
}

void pe_config_free(pe_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->database_url);
    free(cfg->redis_url);
    free(cfg->web_dir);
    free(cfg->webhook_url);
    free(cfg->webhook_secret);
    free(cfg->jobs);
    cfg->database_url = cfg->redis_url = cfg->web_dir = NULL;
    cfg->webhook_url = cfg->webhook_secret = cfg->jobs = NULL;
}
