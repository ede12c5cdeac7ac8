/*
 * pe/http.h — the HTTP layer: a router of method + path patterns, a libmicrohttpd server with
 * limits, request ids, access logs, CORS and security headers, and per-route metrics.
 *
 * Invariants:
 *  1. Every response carries X-Request-Id and X-Content-Type-Options; every error body has the
 *     one shape {"error":{"code":"…","message":"…"}}.
 *  2. A handler replies exactly once: either before it returns, or later from any thread after
 *     calling pe_http_suspend() (then pe_http_resume() hands the reply back to the server).
 *  3. Everything a request allocates hangs off the request and is freed when libmicrohttpd
 *     reports the request completed.
 *  4. http knows core only: authentication is a callback supplied by the application.
 */
#ifndef PE_HTTP_H
#define PE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"

typedef struct pe_http_server pe_http_server_t;
typedef struct pe_http_request pe_http_request_t;
typedef struct pe_http_router pe_http_router_t;

/* What a route demands of the caller. */
typedef enum {
    PE_AUTH_NONE = 0,    /* public */
    PE_AUTH_PUBLISHABLE, /* a publishable key (storefront); a secret key is refused */
    PE_AUTH_ADMIN,       /* a secret key or a merchant session */
    PE_AUTH_SECRET,      /* a secret key only (server-to-server writes such as imports) */
    PE_AUTH_SESSION,     /* a merchant session only */
} pe_auth_kind_t;

/* Who the caller turned out to be. */
typedef enum {
    PE_PRINCIPAL_NONE = 0,
    PE_PRINCIPAL_PUBLISHABLE_KEY,
    PE_PRINCIPAL_SECRET_KEY,
    PE_PRINCIPAL_SESSION,
} pe_principal_t;

#define PE_HTTP_ID_LEN 40

typedef struct {
    pe_principal_t principal;
    char store_id[PE_HTTP_ID_LEN]; /* the key's store, or the {storeId} a session may act on */
    char user_id[PE_HTTP_ID_LEN];  /* sessions only */
} pe_http_auth_t;

/* Route flags. */
#define PE_ROUTE_CORS      0x1u /* storefront-facing: CORS headers and OPTIONS preflight */
#define PE_ROUTE_JSON_BODY 0x2u /* a non-empty body must be application/json (else 415) */
#define PE_ROUTE_TEXT_BODY 0x4u /* with JSON_BODY: text/plain is accepted too (sendBeacon) */
#define PE_ROUTE_STATIC    0x8u /* cacheable static content: no Cache-Control: no-store */
/* The body may come Content-Encoding gzip, x-gzip or deflate (content_encoding.c): it is decoded
 * as it arrives and max_body limits the DECODED size. Without the flag any coding but identity
 * is 415 unsupported_encoding. Collector routes only. */
#define PE_ROUTE_ENCODED_BODY 0x10u

typedef int (*pe_http_handler_fn)(pe_http_request_t *req);

typedef struct {
    const char *method;  /* "GET", "POST", …; GET routes also answer HEAD */
    const char *pattern; /* "/api/v1/stores/{storeId}/flags/{key}"; a last segment "{name*}"
                            captures the rest of the path */
    pe_http_handler_fn handler;
    pe_auth_kind_t auth;
    size_t max_body;  /* bytes; 0 = no body accepted */
    unsigned flags;   /* PE_ROUTE_… */
    const char *name; /* metrics label; defaults to pattern */
} pe_http_route_t;

/* ---- router (pure: no I/O, usable from fuzzers) -------------------------------------------- */

#define PE_HTTP_MAX_PARAMS 8
#define PE_HTTP_MAX_PATH   2048

typedef struct {
    const pe_http_route_t *route;
    size_t route_index;
    size_t nparams;
    const char *names[PE_HTTP_MAX_PARAMS];
    const char *values[PE_HTTP_MAX_PARAMS]; /* percent-decoded, point into storage */
    char storage[PE_HTTP_MAX_PATH + 64];
} pe_route_match_t;

enum {
    PE_ROUTER_MATCH = 0,
    PE_ROUTER_WRONG_METHOD = 1, /* path exists for other methods; allow lists them */
};

/* Returns an empty router (NULL on ENOMEM). Not thread-safe while routes are added; matching is
 * thread-safe afterwards. */
pe_http_router_t *pe_http_router_new(void);
void pe_http_router_free(pe_http_router_t *r);
/* Copies *route (the strings must outlive the router: use literals). Returns 0 or PE_EINVAL for a
 * malformed pattern or a duplicate (method, pattern). */
int pe_http_router_add(pe_http_router_t *r, const pe_http_route_t *route);
size_t pe_http_router_count(const pe_http_router_t *r);
const pe_http_route_t *pe_http_router_route(const pe_http_router_t *r, size_t index);
/* Matches method + raw (still percent-encoded) path. Literal segments beat parameters, and
 * parameters beat a trailing wildcard. Returns PE_ROUTER_MATCH (m filled),
 * PE_ROUTER_WRONG_METHOD (allow = "GET, POST"), PE_ENOTFOUND, or PE_EINVAL for a path that is
 * not a valid path (bad percent-encoding, %00, invalid UTF-8, too long). */
int pe_http_router_match(const pe_http_router_t *r, const char *method, const char *path,
                         size_t pathlen, pe_route_match_t *m, char *allow, size_t allowlen);

/* ---- conditional requests and content codings (pure: usable from fuzzers) ------------------ */

/* True when an Accept-Encoding value (NULL when the header is absent) accepts coding, a token
 * such as "gzip", with a quality above 0 (RFC 9110 §12.5.3): the coding's own entry decides
 * ("gzip;q=0" refuses it even beside "*"), else a "*" entry; "x-gzip" counts as "gzip"; an entry
 * with a malformed q is ignored; tokens compare case-insensitively. Thread-safe. */
bool pe_http_accepts_encoding(const char *accept_encoding, const char *coding);
/* True when an If-None-Match value (NULL when absent) matches etag, a quoted entity tag such as
 * "\"abc\"": "*", or one of the listed tags by weak comparison (RFC 9110 §13.1.2: a W/ prefix
 * is ignored). Thread-safe. */
bool pe_http_none_match(const char *if_none_match, const char *etag);

/* ---- request body content codings (content_encoding.c; pure: usable from fuzzers) ---------- */

/* What a Content-Encoding header asks of the body. */
typedef enum {
    PE_HTTP_CODING_IDENTITY = 0, /* no header, an empty one, or only "identity" */
    PE_HTTP_CODING_GZIP,         /* "gzip" or "x-gzip" (RFC 1952; members may follow each other) */
    PE_HTTP_CODING_DEFLATE,      /* "deflate": zlib (RFC 1950), or raw deflate (RFC 1951) as some
                                    clients send it: told apart by the zlib header */
    PE_HTTP_CODING_COUNT
} pe_http_coding_t;

/* What the server accepts, for messages: one coding at most. */
#define PE_HTTP_CODINGS_ACCEPTED "gzip, x-gzip, deflate or identity (one coding at most)"

/* Parses a Content-Encoding value (NULL when the header is absent) into *coding (RFC 9110
 * §8.4): a comma-separated list of case-insensitive tokens with optional whitespace, empty
 * elements skipped, "identity" ignored. Returns 0, or PE_EINVAL for anything else — an unknown
 * coding (br, compress, zstd …), two codings ("gzip, deflate", "gzip, gzip": layered codings
 * are refused), parameters, or bytes that are not a token (answer 415). Thread-safe; reads only
 * up to the terminating NUL. */
int pe_http_content_coding(const char *content_encoding, pe_http_coding_t *coding);
/* "identity", "gzip" or "deflate" (x-gzip is reported as gzip); a static string. */
const char *pe_http_coding_name(pe_http_coding_t coding);

/* A streaming decoder of one request body: zlib inflates the encoded bytes chunk by chunk, as
 * libmicrohttpd delivers them, and appends the decoded bytes to a pe_buf_t. */
typedef struct pe_http_decoder pe_http_decoder_t;

/* Returns a decoder for coding (GZIP or DEFLATE) whose output may total at most max bytes
 * (max < SIZE_MAX / 2), or NULL (out of memory, or a coding or max it cannot take). The caller
 * owns it: pe_http_decoder_free. Not thread-safe: one request's thread at a time. */
pe_http_decoder_t *pe_http_decoder_new(pe_http_coding_t coding, size_t max);
/* Decodes data[0..size) and appends what it yields to out (keeping out NUL-terminated). out
 * grows by itself, never beyond max + 2 bytes of capacity however large the ratio (a bomb
 * stops at max + 1 decoded bytes), and must be the same buffer on every call. Returns 0;
 * PE_ETOOBIG as soon as the decoded total exceeds max; PE_EINVAL for a corrupt stream or bytes
 * after its end (trailing garbage); PE_ENOMEM. After a non-zero return the decoder stays failed:
 * later calls return the same code and consume nothing. */
int pe_http_decoder_feed(pe_http_decoder_t *d, const void *data, size_t size, pe_buf_t *out);
/* Ends the body. Returns 0 when the stream ended exactly (for gzip: after a whole member),
 * PE_EINVAL when it is truncated (an empty body included), or the code of an earlier failure. */
int pe_http_decoder_finish(pe_http_decoder_t *d, pe_buf_t *out);
/* Why the decoder failed, for a 400 message ("truncated stream", zlib's "incorrect header
 * check" …), or "" while it has not; static strings that live as long as the decoder. */
const char *pe_http_decoder_error(const pe_http_decoder_t *d);
/* Accepts NULL. */
void pe_http_decoder_free(pe_http_decoder_t *d);

/* The Content-Security-Policy of every reply of a route without PE_ROUTE_CORS, in two halves
 * split at the end of its script-src directive. A handler that must allow an inline script (the
 * dashboard's import map) sets its own header, PE_HTTP_CSP_HEAD " 'sha256-…'" PE_HTTP_CSP_TAIL,
 * which then replaces the default for that reply. */
#define PE_HTTP_CSP_HEAD "default-src 'self'; script-src 'self'"
#define PE_HTTP_CSP_TAIL                                                                           \
    "; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "              \
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* ---- the client behind trusted proxies (forwarded.c; pure: usable from fuzzers) ------------ */

/* The client address of a request whose TCP peer is peer, from the values of its
 * X-Forwarded-For header lines in the order received (values[i] may be NULL; nvalues may be 0):
 *  - a peer not in trusted (NULL or empty: trust nobody) is the client; its header is ignored;
 *  - else the entries of all the lines, as if joined by commas, are walked right to left,
 *    skipping addresses in trusted: the first untrusted one is the client, and when every entry
 *    is trusted, the leftmost one; entries left of the client are never read;
 *  - an entry the walk reaches that is not "a.b.c.d", "a.b.c.d:port", an IPv6 address,
 *    "[v6]" or "[v6]:port" makes the client the peer (never an error); empty elements are
 *    skipped; no entry at all leaves the peer.
 * Always fills *client. Returns true when it came from the header, false when it is the peer.
 * Thread-safe; reads only the given strings. */
bool pe_http_forwarded_client(const pe_cidr_list_t *trusted, const pe_ip_t *peer,
                              const char *const *values, size_t nvalues, pe_ip_t *client);

/* ---- server ---------------------------------------------------------------------------------- */

typedef struct {
    const char *host;
    uint16_t port; /* 0 = any free port (see pe_http_server_port) */
    unsigned threads;
    unsigned max_connections;  /* 0 = 1024; beyond it the longest-waiting connection is closed */
    unsigned conn_timeout_s;   /* idle seconds (every byte restarts it); 0 = 30 */
    unsigned header_timeout_s; /* a request's line and headers must arrive within; 0 = 10 */
    unsigned body_timeout_s;   /* its body, from the end of the headers; 0 = 30 */
    void *app;                 /* handed to handlers through pe_http_app() */
    /* Decides whether req may use its route; fills *out. Returns 0, PE_EUNAUTH, PE_EFORBIDDEN or
     * PE_EUNAVAIL (answered with the mapped status). Called from HTTP threads. */
    int (*authenticate)(void *app, pe_http_request_t *req, pe_auth_kind_t required,
                        pe_http_auth_t *out);
    /* Peers whose X-Forwarded-For names the client (PE_TRUSTED_PROXIES); count 0 = none. */
    pe_cidr_list_t trusted_proxies;
} pe_http_server_config_t;

/* Creates a server that will serve router's routes (takes ownership of router). Returns NULL
 * with a reason in err. */
pe_http_server_t *pe_http_server_new(const pe_http_server_config_t *cfg, pe_http_router_t *router,
                                     char *err, size_t errlen);
/* Binds and starts the worker threads. Returns 0 or PE_EIO (reason in err). */
int pe_http_server_start(pe_http_server_t *s, char *err, size_t errlen);
/* The bound port (useful after binding port 0). */
uint16_t pe_http_server_port(const pe_http_server_t *s);
/* First half of a graceful stop: stops accepting connections and waits up to grace_ms for the
 * in-flight requests (including suspended ones) to complete. Requests on open keep-alive
 * connections are still served (with Connection: close) until pe_http_server_stop. */
void pe_http_server_drain(pe_http_server_t *s, unsigned grace_ms);
/* Graceful stop: drains (if not drained), answers 503 for whatever is still parked, then closes
 * everything. Whoever would answer a parked request later must have finished before. */
void pe_http_server_stop(pe_http_server_t *s, unsigned grace_ms);
void pe_http_server_free(pe_http_server_t *s);
/* Appends the Prometheus text of the HTTP metrics (requests by route and status, latency
 * histogram by route, in-flight requests). Thread-safe. */
int pe_http_server_metrics(pe_http_server_t *s, pe_buf_t *out);

/* ---- inside a handler ------------------------------------------------------------------------ */

void *pe_http_app(const pe_http_request_t *req);
const char *pe_http_method(const pe_http_request_t *req);
/* The raw path (percent-encoded, without the query). */
const char *pe_http_path(const pe_http_request_t *req);
/* A decoded path parameter by name, or NULL. */
const char *pe_http_param(const pe_http_request_t *req, const char *name);
/* A decoded query parameter, or NULL. */
const char *pe_http_query(const pe_http_request_t *req, const char *name);
/* Every decoded query parameter, in order (borrowed; lives as long as the request). */
const pe_query_t *pe_http_query_params(const pe_http_request_t *req);
/* A request header (case-insensitive), or NULL. */
const char *pe_http_header(const pe_http_request_t *req, const char *name);
/* A cookie value, or NULL. */
const char *pe_http_cookie(const pe_http_request_t *req, const char *name);
/* The body (NUL-terminated for convenience) and its length. */
const char *pe_http_body(const pe_http_request_t *req, size_t *len);
/* Parses the body as JSON once. On failure replies 400 (invalid_json) and returns NULL; the
 * returned tree belongs to the request. */
cJSON *pe_http_json_body(pe_http_request_t *req);
/* The same, parsed into an arena of the request's own (pe_json_parse_arena): far fewer
 * allocations, for the ingest hot path. The tree is read-only — never change, delete or move
 * any part of it — and lives as long as the request. Use one of the two per request. */
const cJSON *pe_http_json_body_arena(pe_http_request_t *req);
const pe_http_auth_t *pe_http_auth(const pe_http_request_t *req);
const char *pe_http_request_id(const pe_http_request_t *req);
/* The client's address as canonical text (pe_ip_format: "203.0.113.7", "2001:db8::1"): the TCP
 * peer, or, when the peer is one of the server's trusted proxies, the client X-Forwarded-For
 * names (pe_http_forwarded_client); "unknown" for a socket without an IP address. What
 * per-address limits and the access log use. Lives as long as the request. */
const char *pe_http_remote_addr(pe_http_request_t *req);
/* Whether the TCP peer is one of the server's trusted proxies (PE_TRUSTED_PROXIES): only then
 * do its X-Forwarded-* headers say anything about the client. False without the setting. */
bool pe_http_peer_trusted(pe_http_request_t *req);

/* Adds a response header (copied). Call before replying. Returns 0 or PE_ENOMEM. */
int pe_http_set_header(pe_http_request_t *req, const char *name, const char *value);
/* Replies with a copy of body. Returns 0, or PE_ECONFLICT when already replied. */
int pe_http_reply(pe_http_request_t *req, int status, const char *content_type, const void *body,
                  size_t len);
/* Replies with static bytes that outlive the request (no copy). */
int pe_http_reply_static(pe_http_request_t *req, int status, const char *content_type,
                         const void *body, size_t len);
int pe_http_reply_json(pe_http_request_t *req, int status, const char *json, size_t len);
/* Serialises j and replies; takes ownership of j (deleted here). */
int pe_http_reply_cjson(pe_http_request_t *req, int status, cJSON *j);
/* Replies the one error body {"error":{"code":code,"message":…}} with the status the error
 * table gives rc (pe_error_http_status: PE_EINVAL 400, PE_ETOOBIG 413, …): handlers never pick a
 * status by hand. code NULL means the table's code for rc (pe_error_code). */
int pe_http_reply_error(pe_http_request_t *req, int rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for a domain module's refusal: status from rc, code and message from r (an empty
 * code means the table's). */
int pe_http_reply_refusal(pe_http_request_t *req, int rc, const pe_refusal_t *r);
bool pe_http_replied(const pe_http_request_t *req);
/* Replies with a body produced piece by piece (chunked transfer encoding): read(ctx, buf, max)
 * returns bytes written (> 0), 0 at the end, or < 0 to abort the connection; it runs on server
 * threads after the handler returned, one call at a time. done(ctx) runs exactly once when the
 * response is gone (even when never queued). Memory stays bounded by what read produces. */
int pe_http_reply_stream(pe_http_request_t *req, int status, const char *content_type,
                         long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                         void *ctx);

/* Parks the connection so the handler's thread can return while another thread finishes the
 * work; that thread replies and then calls pe_http_resume. Call only from inside a handler. */
void pe_http_suspend(pe_http_request_t *req);
void pe_http_resume(pe_http_request_t *req);

#endif /* PE_HTTP_H */
