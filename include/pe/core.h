/*
 * pe/core.h — the foundation every module stands on: error codes, growable buffers, logging,
 * configuration from the environment, JSON parsing with limits, time and random tokens.
 *
 * Invariants:
 *  1. core depends on nothing else in the project (only libc, cJSON and libsodium).
 *  2. Every function that can fail returns 0 or a negative PE_E… code; constructors return NULL.
 *  3. Every *_free accepts NULL.
 *  4. Everything here is thread-safe unless its comment says otherwise.
 */
#ifndef PE_CORE_H
#define PE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- error codes ---------------------------------------------------------------------------- */

enum {
    PE_OK = 0,
    PE_EINVAL = -1,         /* the caller's input is invalid (400) */
    PE_ENOMEM = -2,         /* allocation failed (500) */
    PE_ENOTFOUND = -3,      /* no such thing, or not visible to this tenant (404) */
    PE_ECONFLICT = -4,      /* duplicate or stale version (409) */
    PE_EUNAUTH = -5,        /* no valid credentials (401) */
    PE_EFORBIDDEN = -6,     /* credentials valid, not allowed (403) */
    PE_EUNAVAIL = -7,       /* a dependency (PostgreSQL, Redis) is down (503) */
    PE_ETOOBIG = -8,        /* input exceeds a limit (413) */
    PE_ETIMEOUT = -9,       /* a deadline passed (503) */
    PE_EIO = -10,           /* an I/O error (500) */
    PE_EINTERNAL = -11,     /* a bug or an unexpected state (500) */
    PE_ELOCKED = -12,       /* throttled or locked out (429) */
    PE_EMETHOD = -13,       /* the method is not allowed on this resource (405) */
    PE_EMEDIA = -14,        /* the body's media type or content coding is not accepted (415) */
    PE_EPRECONDITION = -15, /* the request must be conditional (If-Match) and is not (428) */
};
#define PE_ELAST PE_EPRECONDITION /* the lowest code (tests walk PE_EINVAL … PE_ELAST) */

/* Returns a static, lower-case description of rc ("invalid input"). Thread-safe. */
const char *pe_strerror(int rc);
/* Returns the stable machine code of rc for error bodies ("invalid_request"). Thread-safe. */
const char *pe_error_code(int rc);
/* The one mapping of an error code to an HTTP status. Thread-safe. */
int pe_error_http_status(int rc);

/* ---- growable byte buffer -------------------------------------------------------------------- */

/* A NUL-terminated growable buffer. `data` is NULL until the first append. Not thread-safe. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} pe_buf_t;

#define PE_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes room for `extra` more bytes without changing the contents (one allocation instead of
 * a series of doublings when the final size is roughly known). Returns 0 or PE_ENOMEM. */
int pe_buf_reserve(pe_buf_t *b, size_t extra);
/* Appends n bytes; keeps data NUL-terminated. Returns 0 or PE_ENOMEM. */
int pe_buf_append(pe_buf_t *b, const void *p, size_t n);
/* Appends a C string. Returns 0 or PE_ENOMEM. */
int pe_buf_puts(pe_buf_t *b, const char *s);
/* Appends printf-formatted text. Returns 0 or PE_ENOMEM. */
int pe_buf_printf(pe_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pe_buf_vprintf(pe_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a quoted JSON string, escaping control characters, quotes and backslashes;
 * invalid UTF-8 bytes become U+FFFD. Returns 0 or PE_ENOMEM. */
int pe_buf_json_string(pe_buf_t *b, const char *s, size_t n);
/* Forgets the contents, keeps the allocation. */
void pe_buf_reset(pe_buf_t *b);
/* Frees the allocation; the buffer is reusable afterwards. Accepts NULL. */
void pe_buf_free(pe_buf_t *b);
/* Hands the allocation (possibly NULL) to the caller, who frees it with free(). */
char *pe_buf_steal(pe_buf_t *b);

/* ---- refusals (refusal.c) -------------------------------------------------------------------- */

/* Why an input was refused, in the one shape every module and every client sees: a stable
 * machine code ("missing_field", "invalid_type", "out_of_range", "too_long", "too_many",
 * "unknown_field", "invalid_format", "duplicate", …; each module's header lists the codes it
 * uses) and a message that starts with the path of the offending value and states the rule
 * ("variants[1].weight: must be an integer 0..100"). Plain data: copy it by value. */
#define PE_REFUSAL_CODE_LEN    32
#define PE_REFUSAL_MESSAGE_LEN 512
typedef struct {
    char code[PE_REFUSAL_CODE_LEN];
    char message[PE_REFUSAL_MESSAGE_LEN];
} pe_refusal_t;

/* Fills r (may be NULL: nothing is written) with code — NULL means pe_error_code(rc) — and the
 * formatted message, cut to fit; returns rc, so `return pe_refuse(err, PE_EINVAL, …)` reads as
 * what it does. Thread-safe. */
int pe_refuse(pe_refusal_t *r, int rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int pe_vrefuse(pe_refusal_t *r, int rc, const char *code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* Empties r (accepts NULL). */
void pe_refusal_clear(pe_refusal_t *r);
/* Appends the one error body {"error":{"code":…,"message":…}} to b. Returns 0 or PE_ENOMEM. */
int pe_error_json(pe_buf_t *b, const char *code, const char *message);
int pe_refusal_json(const pe_refusal_t *r, pe_buf_t *b);

/* The one rule for control characters in text a client gives us (names, ids, emails, flag
 * values, catalogue fields): true when s[0..n) holds a C0 control, DEL or a C1 control
 * (U+0080..U+009F). Validators refuse such text with PE_TEXT_CONTROL_RULE after the path.
 * Pure, thread-safe. */
bool pe_text_has_control(const char *s, size_t n);
#define PE_TEXT_CONTROL_RULE "must not contain control characters"

/* ---- logging --------------------------------------------------------------------------------- */

typedef enum { PE_LOG_DEBUG = 0, PE_LOG_INFO, PE_LOG_WARN, PE_LOG_ERROR } pe_log_level_t;

/* Sets the minimum level written. Call once at start-up, before threads exist. */
void pe_log_set_level(pe_log_level_t level);
bool pe_log_enabled(pe_log_level_t level);
/* Writes one JSON line {"ts":…,"level":…,"event":…,"msg":…} to stderr with a single write(2).
 * Thread-safe. */
void pe_log(pe_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes an already formatted JSON object plus a newline with a single write(2). Thread-safe. */
void pe_log_raw(const char *json, size_t len);
/* Parses "debug" | "info" | "warn" | "error". Returns 0 or PE_EINVAL. */
int pe_log_level_parse(const char *s, pe_log_level_t *out);
const char *pe_log_level_name(pe_log_level_t level);

/* ---- network addresses (netaddr.c) ---------------------------------------------------------- */

/* An IPv4 or IPv6 address in one 16-byte form: IPv4 is held as the IPv4-mapped IPv6 address
 * ::ffff:a.b.c.d, so "1.2.3.4" and "::ffff:1.2.3.4" are the same address and one CIDR list
 * covers both families. */
typedef struct {
    uint8_t b[16];
} pe_ip_t;

#define PE_IP_TEXT_LEN 46 /* INET6_ADDRSTRLEN: the longest pe_ip_format text + NUL */

/* Parses exactly n bytes of s as an IPv4 dotted quad or an IPv6 address (no brackets, port or
 * zone; leading zeros in an IPv4 part are refused). Reads at most n bytes. Returns 0 and *out,
 * or PE_EINVAL. */
int pe_ip_parse(const char *s, size_t n, pe_ip_t *out);
/* The canonical text of ip (RFC 5952; IPv4 and IPv4-mapped addresses as a dotted quad), so two
 * spellings of one address give one string. */
void pe_ip_format(const pe_ip_t *ip, char out[PE_IP_TEXT_LEN]);
/* True when ip is IPv4 (IPv4-mapped). */
bool pe_ip_is_v4(const pe_ip_t *ip);

/* An address block: the addresses whose first `bits` bits (of the 128) equal those of net. */
typedef struct {
    pe_ip_t net;
    uint8_t bits; /* 0..128; an IPv4 prefix /n is stored as 96 + n */
} pe_cidr_t;

#define PE_CIDR_LIST_MAX 64

/* A fixed list of address blocks (PE_TRUSTED_PROXIES); count 0 contains nothing. Plain data:
 * copy it by value. */
typedef struct {
    pe_cidr_t items[PE_CIDR_LIST_MAX];
    size_t count;
} pe_cidr_list_t;

/* Parses a comma-separated list of "address[/prefix]" (IPv4 a.b.c.d/0..32, IPv6 x::y/0..128; a
 * bare address is one host; spaces and tabs around entries are ignored; an empty or blank s is
 * the empty list). An entry with bits set past its prefix (10.0.0.1/8) is refused: it is almost
 * always a typo. Returns 0 and *out; PE_EINVAL with the offending entry at s[*bad_off] for
 * *bad_len bytes; or PE_ETOOBIG beyond PE_CIDR_LIST_MAX entries. */
int pe_cidr_list_parse(const char *s, pe_cidr_list_t *out, size_t *bad_off, size_t *bad_len);
/* True when ip is in one of the list's blocks (list may be NULL: contains nothing). */
bool pe_cidr_list_contains(const pe_cidr_list_t *list, const pe_ip_t *ip);

/* ---- rate limits (ratelimit.c) -----------------------------------------------------------------
 */

/* Token buckets by key: `rate` requests a second on average, `burst` at once, in a fixed table
 * of about `capacity` buckets (bounded memory whatever the keys; a key idle longest in its slot
 * window is forgotten first). Thread-safe. */
typedef struct pe_ratelimit pe_ratelimit_t;
/* NULL when rate ≤ 0, burst < 1 or out of memory. */
pe_ratelimit_t *pe_ratelimit_new(double rate, double burst, size_t capacity);
void pe_ratelimit_free(pe_ratelimit_t *rl);
/* Takes a token from key's bucket at now_us (the caller's clock). True when there was one;
 * else false and *retry_after_s (may be NULL) is the time until there is. */
bool pe_ratelimit_take(pe_ratelimit_t *rl, const char *key, int64_t now_us, double *retry_after_s);

/* ---- configuration --------------------------------------------------------------------------- */

/* The read-only configuration built once at start-up from PE_* variables. */
typedef struct {
    char *database_url;         /* PE_DATABASE_URL, libpq conninfo or URI ("" = libpq defaults) */
    char *redis_url;            /* PE_REDIS_URL, redis://host:port[/db] or unix:///path */
    char listen_host[256];      /* PE_LISTEN host part */
    uint16_t listen_port;       /* PE_LISTEN port part (0 = any free port) */
    pe_log_level_t log_level;   /* PE_LOG_LEVEL */
    char *web_dir;              /* PE_WEB_DIR, NULL = the embedded dashboard */
    unsigned http_threads;      /* PE_HTTP_THREADS, 0 = number of CPUs */
    unsigned max_connections;   /* PE_MAX_CONNECTIONS */
    unsigned conn_timeout_s;    /* PE_CONNECTION_TIMEOUT, idle seconds before a connection closes */
    unsigned header_timeout_s;  /* PE_HEADER_TIMEOUT, seconds a request's headers may take */
    unsigned body_timeout_s;    /* PE_BODY_TIMEOUT, seconds a request's body may take */
    unsigned db_pool_size;      /* PE_DB_POOL_SIZE */
    unsigned shutdown_grace_s;  /* PE_SHUTDOWN_GRACE, seconds in-flight requests get on SIGTERM */
    unsigned collector_writers; /* PE_COLLECTOR_WRITERS: group-commit writer threads */
    unsigned collector_window_ms; /* PE_COLLECTOR_WINDOW_MS: how long a writer gathers */
    unsigned
        collector_store_share; /* PE_COLLECTOR_STORE_SHARE: % of the queue one store may hold */
    unsigned events_retention_days; /* PE_EVENTS_RETENTION_DAYS: raw events kept, in days */
    unsigned flags_poll_ms;         /* PE_FLAGS_POLL_MS: PostgreSQL poll of flag-set versions */
    unsigned approval_timeout_h;    /* PE_APPROVAL_TIMEOUT_HOURS: PENDING_APPROVAL lifetime */
    unsigned notify_interval_s;     /* PE_NOTIFY_INTERVAL_S: outbox dispatcher period */
    unsigned measure_interval_s;    /* PE_MEASURE_INTERVAL_S: the measure job's period */
    char *webhook_url;              /* PE_WEBHOOK_URL: ChangeSet notifications (NULL = none) */
    char *webhook_secret;           /* PE_WEBHOOK_SECRET: HMAC-SHA256 key of webhook signatures */
    char *jobs; /* PE_JOBS: background jobs of `serve`: all, none, or names (src/jobs/select.c) */
    pe_cidr_list_t trusted_proxies; /* PE_TRUSTED_PROXIES: peers whose X-Forwarded-For counts */
    unsigned rate_key; /* PE_RATE_KEY: storefront requests a second per publishable key (0: off) */
    unsigned rate_address; /* PE_RATE_ADDRESS: storefront requests a second per client address */
} pe_config_t;

/* Fills cfg from the environment (getenv). On a bad value returns PE_EINVAL and writes a
 * one-line message naming the variable into err. The caller frees cfg with pe_config_free. */
int pe_config_from_env(pe_config_t *cfg, char *err, size_t errlen);
/* Same, reading variables through lookup(name, ctx) (tests use it). */
int pe_config_load(pe_config_t *cfg, const char *(*lookup)(const char *name, void *ctx), void *ctx,
                   char *err, size_t errlen);
void pe_config_free(pe_config_t *cfg);
/* Splits "host:port" or "[v6]:port". Returns 0 or PE_EINVAL. */
int pe_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port);

/* ---- JSON ------------------------------------------------------------------------------------ */

/* Parses exactly len bytes of JSON (no trailing garbage, nesting ≤ 64 levels, valid UTF-8,
 * no NUL bytes). Returns 0 and *out (caller frees with cJSON_Delete), or PE_EINVAL with a
 * short reason in err. Thread-safe (does not touch cJSON's global error pointer). */
int pe_json_parse(const char *text, size_t len, cJSON **out, char *err, size_t errlen);
/* The same, with the whole tree in an arena of its own, for the ingest hot path: no allocation
 * per node, and freeing is pe_json_arena_free(*arena) — never cJSON_Delete on the tree or any
 * part of it, and nothing of it added to another tree; read it only. On failure *arena is NULL.
 * Needs pe_json_init (it calls it; call it early, before threads use cJSON). */
typedef struct pe_json_arena pe_json_arena_t;
int pe_json_parse_arena(const char *text, size_t len, pe_json_arena_t **arena, cJSON **out,
                        char *err, size_t errlen);
void pe_json_arena_free(pe_json_arena_t *arena);
/* Installs cJSON's allocation hooks the arena needs (malloc and free everywhere else); once per
 * process, before other threads use cJSON. Idempotent. */
void pe_json_init(void);
/* Checks UTF-8 validity of n bytes (rejects overlongs, surrogates, > U+10FFFF). */
bool pe_utf8_valid(const char *s, size_t n);
/* A client's object key as messages quote it: at most PE_JSON_KEY_QUOTE_MAX bytes, cut at a
 * character boundary (then "..."), control bytes and ' as '?', the empty key as "" so a path
 * never has an invisible step. Writes into out and returns it (or a static "\"\"").
 * Pure, thread-safe. */
#define PE_JSON_KEY_QUOTE_MAX 48
const char *pe_json_quote_key(const char *key, char out[PE_JSON_KEY_QUOTE_MAX + 4]);
/* The one rule for numbers that are not finite. cJSON parses 1e400 (and -1e400) to ±inf and
 * prints inf and nan as null, so such a number would be stored as something else than what was
 * given: every validator of untrusted JSON refuses it, with this wording after the path. */
#define PE_JSON_NONFINITE_RULE "must be a finite number (this one overflows a double)"
/* Finds the first number in j (depth first, document order) that is not finite. Returns true
 * and writes its path into path (pathlen bytes, NUL-terminated, cut at a UTF-8 boundary when
 * long): prefix, the path of j itself ("variants[0].value"; "" or NULL for a root), then
 * ".key" and "[i]" steps, keys quoted as the validators quote them (at most 48 bytes, then
 * "..."; control bytes and ' as '?'; the empty key as ""): "variants[0].value.n",
 * "custom.a[2]". Returns false (path = prefix) when every number in j is finite; j may be NULL.
 * Size path so that "<path>: " PE_JSON_NONFINITE_RULE fits the caller's message: a deep path of
 * long keys is cut, the rule never is. Pure, allocation-free, thread-safe; recursion as deep as
 * the tree. */
bool pe_json_find_nonfinite(const cJSON *j, const char *prefix, char *path, size_t pathlen);
/* ---- percent-encoding ------------------------------------------------------------------------ */

/* Value of a hexadecimal digit, or -1. */
int pe_hex_digit(char c);
/* Decodes percent-encoding of s[0..n) into out (outlen bytes, NUL-terminated); '+' becomes a
 * space when plus_is_space (query strings). Returns the decoded length, or -1 for a malformed
 * escape, a decoded NUL, or output that does not fit. Does not check UTF-8. */
long pe_percent_decode(const char *s, size_t n, char *out, size_t outlen, bool plus_is_space);
/* The same for text: out has room for n + 1 bytes, and decoded text that is not valid UTF-8 is
 * refused too. Returns the decoded length, or -1. */
long pe_percent_decode_text(const char *s, size_t n, char *out, bool plus_is_space);

/* A parsed query string: names and values decoded, in order, pointing into storage. */
#define PE_QUERY_MAX_PARAMS 64
typedef struct {
    size_t count;
    const char *names[PE_QUERY_MAX_PARAMS];
    const char *values[PE_QUERY_MAX_PARAMS];
    char *storage; /* owned */
} pe_query_t;

/* Parses a raw query string ("a=1&b=x%20y", '+' is a space; empty parts between '&' skipped).
 * Returns 0, PE_EINVAL (bad percent-encoding, %00, invalid UTF-8), PE_ETOOBIG (more than
 * PE_QUERY_MAX_PARAMS) or PE_ENOMEM. Free with pe_query_free whatever it returned. The one
 * parser of the server's query strings and of the page URLs events carry. Thread-safe. */
int pe_query_parse(const char *qs, size_t len, pe_query_t *q);
/* First value of name, or NULL. */
const char *pe_query_get(const pe_query_t *q, const char *name);
void pe_query_free(pe_query_t *q);

/* Returns a malloc'ed compact serialisation of j, or NULL on ENOMEM. */
char *pe_json_print(const cJSON *j);

/* ---- time and randomness --------------------------------------------------------------------- */

/* Microseconds on the monotonic clock. */
int64_t pe_now_mono_us(void);
/* Microseconds since the Unix epoch. */
int64_t pe_now_unix_us(void);
/* RFC 3339 (rfc3339.c). Formats unix microseconds as UTC with milliseconds
 * ("2026-11-24T10:00:00.123Z") into out (≥ 25 bytes). Pure arithmetic; thread-safe. */
void pe_time_format_rfc3339(int64_t unix_us, char *out, size_t outlen);
/* Parses an RFC 3339 timestamp ("2026-11-24T10:00:00.123Z", offsets allowed) into Unix µs.
 * Accepts exactly YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM|-HH:MM) with upper-case T and Z, a
 * real calendar date (leap years counted), hours 00..23, seconds 00..59 (no leap second);
 * digits past microseconds are truncated. Pure arithmetic: no locale, no time zone, no libc
 * calendar. Returns 0 or PE_EINVAL. Thread-safe. */
int pe_time_parse_rfc3339(const char *s, int64_t *unix_us);
/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil); m 1..12
 * and d 1..31 are not checked (callers validate, or compare the round trip). Pure. */
int64_t pe_days_from_civil(int64_t y, int m, int d);
/* The inverse: the date of a day number. Pure. */
void pe_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Writes n random bytes, hex-encoded, into out (needs 2n+1 bytes). Uses libsodium. */
void pe_random_hex(char *out, size_t n);
/* Writes a random (version 4) UUID as lower-case text into out. Uses libsodium. */
#define PE_UUID_TEXT_LEN 37
void pe_random_uuid(char out[PE_UUID_TEXT_LEN]);
/* True when s is a UUID in text form: 36 characters, hex digits of either case with dashes at
 * 8, 13, 18 and 23 (s may be NULL or shorter: false). Pure. */
bool pe_uuid_text_valid(const char *s);
/* Writes a url-safe random token of n random bytes (base64url, no padding) into out
 * (needs 4*ceil(n/3)+1 bytes). */
void pe_random_token(char *out, size_t outlen, size_t n);
/* Initialises libsodium; call once at start-up. Returns 0 or PE_EINTERNAL. */
int pe_crypto_init(void);

/* ---- embedded files -------------------------------------------------------------------------- */

/* A file compiled into the binary (cmake/embed.cmake): path relative to its folder. */
typedef struct {
    const char *path;
    const unsigned char *data; /* NUL-terminated; the terminator is not counted in len */
    size_t len;
} pe_embedded_file_t;

/* The files of sql/migrations, sorted by name. */
extern const pe_embedded_file_t pe_embedded_migrations[];
extern const size_t pe_embedded_migrations_count;
/* A dashboard file compiled into the binary with what the build derived for HTTP caching
 * (cmake/embed_run.cmake, ASSETS mode). data is the file as served: pages and stylesheets have
 * their references to other files rewritten to fingerprinted URLs (path?v=<hash>). */
typedef struct {
    const char *path;
    const unsigned char *data; /* NUL-terminated; the terminator is not counted in len */
    size_t len;
    const char *hash;          /* first 16 hex digits of the SHA-256 of data: ETag, fingerprint */
    const unsigned char *gzip; /* gzip -9n of data, or NULL when it is not 10% smaller */
    size_t gzip_len;
    const char *script_hash; /* CSP source ('sha256-…') of a page's inline import map, or NULL */
} pe_embedded_asset_t;

/* The files under web/, sorted by path. */
extern const pe_embedded_asset_t pe_embedded_web[];
extern const size_t pe_embedded_web_count;

#define PE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* PE_CORE_H */
