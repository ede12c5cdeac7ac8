/*
 * server.c — the libmicrohttpd server: the request lifecycle (libmicrohttpd's callbacks), limits,
 * the authentication hook, what a handler reads of its request, suspend/resume, the access log,
 * start and graceful shutdown. Its neighbours: reply.c records and sends the reply, http_metrics.c
 * counts and exposes the metrics, arrival.c keeps the connection deadlines.
 *
 * Request lifecycle (one pe_http_request_t per HTTP request):
 *
 *    uri_log ──▶ NEW ──begin()──▶ BODY ──(upload chunks)──▶ BODY ──final call──▶ HANDLED
 *                 │                 │                                              │
 *                 └─early reply─────┴──────────────▶ queue response ◀──(resume)───┘
 *                                                          │
 *                                      completed() ──▶ access log, metrics, free
 *
 *   state     function           what happens
 *   NEW       begin()            route, query, size, content-encoding and content-type checks,
 *                                authentication; any failure replies at once (4xx) and skips
 *                                the body; a gzip/deflate body on a PE_ROUTE_ENCODED_BODY route
 *                                gets a decoder (content_encoding.c), on any other route 415
 *   BODY      take_upload()      accumulate up to the route's max_body; more → 413. Encoded:
 *                                the decoder appends to the body and stops past max_body
 *                                decoded bytes (or max_body encoded ones); a failure is kept
 *   HANDLED   run_handler()      an encoded body is finished first (too big → 413, corrupt,
 *                                truncated or trailing bytes → 400 invalid_encoding); then the
 *                                handler replies, or suspends and replies later
 *   any       on_access()        queues the reply (pe_http_reply_queue, reply.c) once there is one
 *   any       completed()        log one JSON line, count metrics (http_metrics.c), free the
 *                                request (its reply: pe_http_reply_release; and the decoder)
 *
 * Invariants:
 *  1. The request object is created by the URI-log callback and freed only in completed(), so
 *     nothing allocated for a request outlives it.
 *  2. A response is queued at most once per request, from an MHD thread: on_access hands it to
 *     pe_http_reply_queue only while it is not queued.
 *  3. in_flight counts requests between uri_log and completed(); graceful stop waits on it.
 *  4. The client address (pe_http_remote_addr: per-address limits, the access log's "remote")
 *     believes X-Forwarded-For only from a peer in cfg.trusted_proxies (forwarded.c).
 *  5. A handler sees a decoded body: max_body bounds both the decoded size and the bytes read
 *     off the wire, so a decompression bomb or an endless stream of empty gzip members costs at
 *     most max_body + 2 bytes of body and zlib's state. A request without Content-Encoding pays
 *     one header lookup (only when it has a body) and one NULL test per chunk.
 *  6. Every connection has arrival deadlines (arrival.c): on_access moves it to BODY when the
 *     headers are complete and to HANDLING when the body is, on_completed back to WAITING; the
 *     headers of a request are read once, there, for the deadline and begin() alike.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_internal.h"

/* Bytes of a too-big chunked body we drain before closing the connection instead. */
#define DRAIN_LIMIT (1u << 20)

/* ---- small helpers --------------------------------------------------------------------------- */

/* The request's slot in s->metrics: its route's, or the one of unmatched requests
 * (http_metrics.c invariant 1). */
static size_t metrics_slot(const pe_http_server_t *s, const pe_http_request_t *req)
{
    return req->routed ? req->match.route_index : pe_http_router_count(s->router);
}

static bool valid_request_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool media_type_is(const char *content_type, const char *want)
{
    while (*content_type == ' ')
        content_type++;
    size_t n = strlen(want);
    if (strncasecmp(content_type, want, n) != 0)
        return false;
    char c = content_type[n];
    return c == '\0' || c == ';' || c == ' ';
}

/* ---- request accessors ----------------------------------------------------------------------- */

void *pe_http_app(const pe_http_request_t *req)
{
    return req->srv->cfg.app;
}

const char *pe_http_method(const pe_http_request_t *req)
{
    return req->method;
}

const char *pe_http_path(const pe_http_request_t *req)
{
    return req->uri; /* the '?' was replaced by NUL in begin() */
}

const char *pe_http_param(const pe_http_request_t *req, const char *name)
{
    if (!req->routed)
        return NULL;
    for (size_t i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.names[i], name) == 0)
            return req->match.values[i];
    return NULL;
}

const char *pe_http_query(const pe_http_request_t *req, const char *name)
{
    return pe_query_get(&req->query, name);
}

const pe_query_t *pe_http_query_params(const pe_http_request_t *req)
{
    return &req->query;
}

const char *pe_http_header(const pe_http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *pe_http_cookie(const pe_http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *pe_http_body(const pe_http_request_t *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

cJSON *pe_http_json_body(pe_http_request_t *req)
{
    if (req->json)
        return req->json;
    char err[128];
    if (pe_json_parse(req->body.data ? req->body.data : "", req->body.len, &req->json, err,
                      sizeof err) != 0) {
        pe_http_reply_error(req, PE_EINVAL, "invalid_json", "%s", err);
        return NULL;
    }
    return req->json;
}

const cJSON *pe_http_json_body_arena(pe_http_request_t *req)
{
    if (req->json)
        return req->json;
    char err[128];
    if (pe_json_parse_arena(req->body.data ? req->body.data : "", req->body.len, &req->json_arena,
                            &req->json, err, sizeof err) != 0) {
        pe_http_reply_error(req, PE_EINVAL, "invalid_json", "%s", err);
        return NULL;
    }
    return req->json;
}

const pe_http_auth_t *pe_http_auth(const pe_http_request_t *req)
{
    return &req->auth;
}

const char *pe_http_request_id(const pe_http_request_t *req)
{
    return req->request_id;
}

/* The TCP peer as an address; false for a socket without one. */
static bool peer_address(pe_http_request_t *req, pe_ip_t *out)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        /* as pe_ip_parse holds IPv4: ::ffff:a.b.c.d */
        memset(out->b, 0, 10);
        out->b[10] = out->b[11] = 0xff;
        memcpy(out->b + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

typedef struct {
    const char **values;
    size_t n, cap;
} forwarded_values_t;

static enum MHD_Result collect_forwarded(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value)
{
    (void)kind;
    forwarded_values_t *fv = cls;
    if (key && strcasecmp(key, "X-Forwarded-For") == 0) {
        if (fv->values && fv->n < fv->cap)
            fv->values[fv->n] = value;
        fv->n++;
    }
    return MHD_YES;
}

/* Fills req->peer and req->remote. Reads the request's headers only when the peer is a trusted
 * proxy, so without PE_TRUSTED_PROXIES this costs one inet_ntop. */
static void resolve_client(pe_http_request_t *req)
{
    pe_ip_t peer, client;
    if (!peer_address(req, &peer)) {
        snprintf(req->peer, sizeof req->peer, "unknown");
        snprintf(req->remote, sizeof req->remote, "unknown");
        return;
    }
    pe_ip_format(&peer, req->peer);
    const pe_cidr_list_t *trusted = &req->srv->cfg.trusted_proxies;
    client = peer;
    if (pe_cidr_list_contains(trusted, &peer)) {
        /* Every X-Forwarded-For line, in order: a proxy may add its own line after the client's.
         * Usually one, so no allocation; more only as many as the request's 64 KiB allow. */
        const char *inline_values[4];
        forwarded_values_t fv = {inline_values, 0, PE_ARRAY_LEN(inline_values)};
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_forwarded, &fv);
        if (fv.n > fv.cap) {
            size_t n = fv.n;
            fv = (forwarded_values_t){calloc(n, sizeof *fv.values), 0, n};
            if (fv.values)
                MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_forwarded, &fv);
            else
                fv.n = 0; /* out of memory: the peer it is */
        }
        req->forwarded = pe_http_forwarded_client(trusted, &peer, fv.values, fv.n, &client);
        if (fv.values != inline_values)
            free(fv.values);
    }
    if (req->forwarded)
        pe_ip_format(&client, req->remote);
    else
        memcpy(req->remote, req->peer, sizeof req->remote);
}

bool pe_http_peer_trusted(pe_http_request_t *req)
{
    pe_ip_t peer;
    return req->srv->cfg.trusted_proxies.count && peer_address(req, &peer) &&
           pe_cidr_list_contains(&req->srv->cfg.trusted_proxies, &peer);
}

const char *pe_http_remote_addr(pe_http_request_t *req)
{
    if (!req->remote[0])
        resolve_client(req);
    return req->remote;
}

/* ---- suspend / resume ------------------------------------------------------------------------ */

void pe_http_suspend(pe_http_request_t *req)
{
    pe_http_server_t *s = req->srv;
    req->async = true;
    pthread_mutex_lock(&s->suspended_lock);
    req->suspended = true;
    req->next_suspended = s->suspended;
    s->suspended = req;
    pthread_mutex_unlock(&s->suspended_lock);
    MHD_suspend_connection(req->conn);
}

void pe_http_resume(pe_http_request_t *req)
{
    pe_http_server_t *s = req->srv;
    bool was_parked = false;
    pthread_mutex_lock(&s->suspended_lock);
    for (pe_http_request_t **p = &s->suspended; *p; p = &(*p)->next_suspended) {
        if (*p == req) {
            *p = req->next_suspended;
            was_parked = true;
            break;
        }
    }
    req->suspended = false;
    pthread_mutex_unlock(&s->suspended_lock);
    if (was_parked)
        MHD_resume_connection(req->conn);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    pe_http_server_t *s = cls;
    pe_http_request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->srv = s;
    req->conn = conn;
    req->start_us = pe_now_mono_us();
    req->uri = strdup(uri ? uri : "");
    req->status = 0;
    req->content_type = "application/json";
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
    return req;
}

/* Routes and vets the request before its body is read. Replies on any failure. */
static void begin(pe_http_request_t *req, const char *method)
{
    pe_http_server_t *s = req->srv;
    req->method = method;

    const char *reqid = pe_http_header(req, "X-Request-Id");
    if (reqid && valid_request_id(reqid)) {
        snprintf(req->request_id, sizeof req->request_id, "%s", reqid);
    } else {
        uint64_t n = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed);
        snprintf(req->request_id, sizeof req->request_id, "%s-%08llx", s->id_prefix,
                 (unsigned long long)n);
    }

    /* X-Forwarded-For is read now, while the request's headers are certainly there: the
     * access log asks for the client after the request completed. */
    if (s->cfg.trusted_proxies.count)
        resolve_client(req);

    if (!req->uri) {
        pe_http_reply_error(req, PE_ENOMEM, "internal_error", "out of memory");
        return;
    }
    char *q = strchr(req->uri, '?');
    req->path_len = q ? (size_t)(q - req->uri) : strlen(req->uri);
    if (q) {
        *q = '\0';
        int qrc = pe_query_parse(q + 1, strlen(q + 1), &req->query);
        if (qrc != 0) {
            if (qrc == PE_ETOOBIG)
                pe_http_reply_error(req, PE_EINVAL, "invalid_query",
                                    "more than %d query parameters", PE_QUERY_MAX_PARAMS);
            else
                pe_http_reply_error(req, PE_EINVAL, "invalid_query",
                                    "malformed query string (bad percent-encoding, %%00 or "
                                    "invalid UTF-8)");
            return;
        }
    }

    bool preflight = strcmp(method, "OPTIONS") == 0;
    int rc = pe_http_router_match(s->router, method, req->uri, req->path_len, &req->match,
                                  req->allow, sizeof req->allow);
    if (rc == PE_ROUTER_WRONG_METHOD && preflight) {
        /* Preflight: answer for the path, with CORS headers when its routes are storefront-facing.
         */
        char first[16];
        size_t n = strcspn(req->allow, ",");
        snprintf(first, sizeof first, "%.*s", (int)n, req->allow);
        char ignored[64];
        if (pe_http_router_match(s->router, first, req->uri, req->path_len, &req->match, ignored,
                                 sizeof ignored) == PE_ROUTER_MATCH) {
            req->routed = true;
            if (req->match.route->flags & PE_ROUTE_CORS) {
                pe_http_set_header(req, "Access-Control-Allow-Methods", req->allow);
                pe_http_set_header(req, "Access-Control-Allow-Headers",
                                   (req->match.route->flags & PE_ROUTE_ENCODED_BODY)
                                       ? "Authorization, Content-Type, Content-Encoding, "
                                         "X-Request-Id, If-None-Match, X-API-Key"
                                       : "Authorization, Content-Type, X-Request-Id, "
                                         "If-None-Match, X-API-Key");
                pe_http_set_header(req, "Access-Control-Max-Age", "86400");
            }
        }
        pe_http_reply_static(req, 204, "text/plain", "", 0);
        return;
    }
    if (rc == PE_EINVAL) {
        pe_http_reply_error(req, PE_EINVAL, "invalid_path", "the request path is not a valid path");
        return;
    }
    if (rc == PE_ROUTER_WRONG_METHOD) {
        pe_http_reply_error(req, PE_EMETHOD, "method_not_allowed", "%s is not allowed here; use %s",
                            method, req->allow);
        return;
    }
    if (rc != PE_ROUTER_MATCH) {
        req->allow[0] = '\0';
        pe_http_reply_error(req, PE_ENOTFOUND, "not_found", "no route for %s %.200s", method,
                            req->uri);
        return;
    }
    req->routed = true;
    req->allow[0] = '\0';
    const pe_http_route_t *route = req->match.route;

    /* Body size and type, before reading a byte of it. */
    const char *cl = req->content_length, *te = req->transfer_encoding;
    bool has_body = req->has_body;
    if (cl) {
        char *end = NULL;
        unsigned long long len = strtoull(cl, &end, 10);
        if (end == cl || *end != '\0') {
            pe_http_reply_error(req, PE_EINVAL, "invalid_request", "malformed Content-Length");
            return;
        }
        if (len > route->max_body) {
            pe_http_reply_error(req, PE_ETOOBIG, "payload_too_large",
                                "the body has %llu bytes; this route accepts at most %zu", len,
                                route->max_body);
            return;
        }
    } else if (te && route->max_body == 0) {
        pe_http_reply_error(req, PE_ETOOBIG, "payload_too_large", "this route accepts no body");
        return;
    }
    /* Looked up only when a body comes: nothing to decode otherwise. */
    const char *ce = has_body ? pe_http_header(req, "Content-Encoding") : NULL;
    if (ce) {
        bool may = (route->flags & PE_ROUTE_ENCODED_BODY) != 0;
        if (pe_http_content_coding(ce, &req->coding) != 0) {
            pe_http_reply_error(req, PE_EMEDIA, "unsupported_encoding",
                                "Content-Encoding \"%.64s\" is not supported; %s", ce,
                                may ? "this route accepts " PE_HTTP_CODINGS_ACCEPTED
                                    : "this route accepts an unencoded body only");
            return;
        }
        if (req->coding != PE_HTTP_CODING_IDENTITY && !may) {
            pe_http_reply_error(req, PE_EMEDIA, "unsupported_encoding",
                                "this route accepts an unencoded body only, not Content-Encoding "
                                "%s",
                                pe_http_coding_name(req->coding));
            return;
        }
    }
    if (has_body && (route->flags & PE_ROUTE_JSON_BODY)) {
        const char *ct = pe_http_header(req, "Content-Type");
        /* An encoded body is never a form: axios labels every Buffer it posts
         * application/x-www-form-urlencoded, gzip batches of @rudderstack/rudder-sdk-node too. */
        bool ok = ct && (media_type_is(ct, "application/json") ||
                         ((route->flags & PE_ROUTE_TEXT_BODY) && media_type_is(ct, "text/plain")) ||
                         (req->coding != PE_HTTP_CODING_IDENTITY &&
                          media_type_is(ct, "application/x-www-form-urlencoded")));
        if (!ok) {
            pe_http_reply_error(req, PE_EMEDIA, "unsupported_media_type",
                                "the body must be application/json%s",
                                (route->flags & PE_ROUTE_TEXT_BODY) ? " (or text/plain)" : "");
            return;
        }
    }

    if (route->auth != PE_AUTH_NONE) {
        int arc = s->cfg.authenticate
                      ? s->cfg.authenticate(s->cfg.app, req, route->auth, &req->auth)
                      : PE_EUNAUTH;
        if (arc != 0 && !req->replied)
            pe_http_reply_error(req, arc, NULL, "%s", pe_strerror(arc));
    }
    /* zlib's state only for a request that will be read */
    if (req->coding != PE_HTTP_CODING_IDENTITY && !req->replied) {
        req->decoder = pe_http_decoder_new(req->coding, route->max_body);
        if (!req->decoder)
            pe_http_reply_error(req, PE_ENOMEM, "internal_error", "out of memory");
    }
}

/* An encoded body: the decoder appends to req->body. Every encoded byte counts in drained, and
 * max_body bounds them too (invariant 5: a stream that decodes to nothing must end as well). */
static void take_encoded(pe_http_request_t *req, const char *data, size_t size)
{
    size_t max = req->match.route->max_body;
    req->drained += size;
    if (req->decode_rc != 0)
        return;
    int rc = req->drained > max ? PE_ETOOBIG
                                : pe_http_decoder_feed(req->decoder, data, size, &req->body);
    if (rc == 0)
        return;
    req->decode_rc = rc;
    req->body_too_big = rc == PE_ETOOBIG;
    pe_buf_free(&req->body);
}

static void take_upload(pe_http_request_t *req, const char *data, size_t size)
{
    if (req->replied || req->body_too_big) {
        req->drained += size;
        return;
    }
    if (req->decoder) {
        take_encoded(req, data, size);
        return;
    }
    size_t max = req->match.route->max_body;
    if (req->body.len + size > max) {
        req->body_too_big = true;
        req->drained = req->body.len + size;
        pe_buf_free(&req->body);
        return;
    }
    if (pe_buf_append(&req->body, data, size) != 0) {
        req->body_too_big = true;
        pe_buf_free(&req->body);
    }
}

static void run_handler(pe_http_request_t *req)
{
    const pe_http_route_t *route = req->match.route;
    if (req->body_too_big) {
        if (req->decoder)
            pe_http_reply_error(req, PE_ETOOBIG, "payload_too_large",
                                "this route accepts at most %zu bytes; the limit applies to the "
                                "decoded body (after Content-Encoding %s is removed)",
                                route->max_body, pe_http_coding_name(req->coding));
        else
            pe_http_reply_error(req, PE_ETOOBIG, "payload_too_large",
                                "this route accepts at most %zu bytes", route->max_body);
        return;
    }
    if (req->decoder) {
        int drc =
            req->decode_rc ? req->decode_rc : pe_http_decoder_finish(req->decoder, &req->body);
        if (drc == PE_EINVAL) {
            pe_http_reply_error(req, PE_EINVAL, "invalid_encoding", "the body is not valid %s: %s",
                                pe_http_coding_name(req->coding),
                                pe_http_decoder_error(req->decoder));
            return;
        }
        if (drc != 0) {
            pe_http_reply_error(req, drc, NULL, "%s", pe_strerror(drc));
            return;
        }
        pe_http_metrics_count_decoded(req->srv->metrics, metrics_slot(req->srv, req), req->coding);
    }
    int rc = route->handler(req);
    /* Parked: another thread replies and resumes, possibly already; either way the reply is
     * queued when libmicrohttpd calls us again after the resume, never now. */
    if (req->async)
        return;
    if (!req->replied) {
        if (rc != 0)
            pe_http_reply_error(req, rc, NULL, "%s", pe_strerror(rc));
        else
            pe_http_reply_error(req, PE_EINTERNAL, "internal_error", "the handler did not reply");
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    pe_http_request_t *req = *req_cls;
    if (!req)
        return MHD_NO; /* out of memory in on_uri */
    req->conn = conn;

    if (req->phase == PE_HTTP_PHASE_NEW) {
        req->phase = PE_HTTP_PHASE_BODY;
        req->content_length = pe_http_header(req, "Content-Length");
        req->transfer_encoding = pe_http_header(req, "Transfer-Encoding");
        req->has_body = req->transfer_encoding ||
                        (req->content_length && strcmp(req->content_length, "0") != 0);
        req->arrival = pe_http_arrival_of(conn);
        pe_http_arrival_headers_done(req->arrival, req->has_body);
        begin(req, method);
        if (req->replied)
            return pe_http_reply_queue(req);
        return MHD_YES;
    }
    if (*upload_data_size) {
        take_upload(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        /* A chunked body far beyond the limit: stop reading and drop the connection. */
        return req->drained > req->match.route->max_body + DRAIN_LIMIT ? MHD_NO : MHD_YES;
    }
    if (req->phase == PE_HTTP_PHASE_BODY) {
        req->phase = PE_HTTP_PHASE_HANDLED;
        pe_http_arrival_body_done(req->arrival);
        if (!req->replied)
            run_handler(req);
        if (req->async)
            return MHD_YES;
    }
    if (req->queued)
        return MHD_YES;
    if (!req->replied)
        pe_http_reply_error(req, PE_EINTERNAL, "internal_error", "resumed without a reply");
    return pe_http_reply_queue(req);
}

static void access_log(pe_http_request_t *req, double seconds, enum MHD_RequestTerminationCode toe)
{
    if (!pe_log_enabled(PE_LOG_INFO))
        return;
    char ts[32];
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    const char *path = req->uri ? req->uri : "";
    size_t path_len = strlen(path);
    if (path_len > 512)
        path_len = 512;
    const char *route = req->routed ? req->match.route->name : "";
    const char *method = req->method ? req->method : "";
    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_buf_printf(&b,
                           "{\"ts\":\"%s\",\"level\":\"info\",\"event\":\"http_request\","
                           "\"request_id\":\"%s\",\"method\":",
                           ts, req->request_id);
    rc |= pe_buf_json_string(&b, method, strlen(method));
    rc |= pe_buf_puts(&b, ",\"path\":");
    rc |= pe_buf_json_string(&b, path, path_len);
    rc |= pe_buf_puts(&b, ",\"route\":");
    rc |= pe_buf_json_string(&b, route, strlen(route));
    /* remote: the client (behind trusted proxies, from X-Forwarded-For); peer: the proxy then */
    const char *remote = req->conn || req->remote[0] ? pe_http_remote_addr(req) : "";
    rc |= pe_buf_printf(&b, ",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%zu,\"remote\":\"%s\"",
                        req->queued ? req->status : 499, seconds * 1000.0, req->resp_len, remote);
    if (req->forwarded)
        rc |= pe_buf_printf(&b, ",\"peer\":\"%s\"", req->peer);
    rc |= pe_buf_puts(&b, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "}" : ",\"aborted\":true}");
    if (rc == 0)
        pe_log_raw(b.data, b.len);
    pe_buf_free(&b);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    pe_http_server_t *s = cls;
    pe_http_request_t *req = *req_cls;
    pe_http_arrival_request_done(pe_http_arrival_of(conn));
    if (!req)
        return;
    *req_cls = NULL;
    req->conn = conn;
    double seconds = (double)(pe_now_mono_us() - req->start_us) / 1e6;

    pe_http_metrics_count(s->metrics, metrics_slot(s, req), req->queued ? req->status : 499,
                          seconds);

    if (req->method)
        access_log(req, seconds, toe);

    pe_http_reply_release(req);
    if (req->json_arena)
        pe_json_arena_free(req->json_arena);
    else
        cJSON_Delete(req->json);
    pe_buf_free(&req->body);
    if (req->decoder)
        pe_http_decoder_free(req->decoder);
    pe_query_free(&req->query);
    free(req->uri);
    free(req);
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    pe_log(PE_LOG_DEBUG, "http_daemon", "%s", msg);
}

/* ---- server ---------------------------------------------------------------------------------- */

pe_http_server_t *pe_http_server_new(const pe_http_server_config_t *cfg, pe_http_router_t *router,
                                     char *err, size_t errlen)
{
    pe_http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        pe_http_router_free(router);
        return NULL;
    }
    s->cfg = *cfg;
    snprintf(s->host, sizeof s->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
    s->cfg.host = s->host;
    s->router = router;
    s->metrics = pe_http_metrics_new(pe_http_router_count(router));
    if (!s->metrics) {
        snprintf(err, errlen, "out of memory");
        pe_http_server_free(s);
        return NULL;
    }
    pe_random_hex(s->id_prefix, 6);
    pthread_mutex_init(&s->suspended_lock, NULL);
    return s;
}

int pe_http_server_start(pe_http_server_t *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    const char *host = s->host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(s->cfg.port);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "PE_LISTEN: '%s' is not an IPv4 or IPv6 address", s->host);
        return PE_EINVAL;
    }
    unsigned threads = s->cfg.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    unsigned max_conns = s->cfg.max_connections ? s->cfg.max_connections : 1024u;
    unsigned idle_s = s->cfg.conn_timeout_s ? s->cfg.conn_timeout_s : 30u;
    pe_http_arrivals_config_t acfg = {
        .header_timeout_s = s->cfg.header_timeout_s ? s->cfg.header_timeout_s : 10u,
        .body_timeout_s = s->cfg.body_timeout_s ? s->cfg.body_timeout_s : 30u,
        .idle_timeout_s = idle_s,
        .max_connections = max_conns,
    };
    s->arrivals = pe_http_arrivals_new(&acfg);
    if (!s->arrivals) {
        snprintf(err, errlen, "cannot start the connection deadline thread");
        return PE_ENOMEM;
    }
    /* libmicrohttpd's own limit (split evenly between its threads) leaves room above
     * max_connections: a connection it accepts lets arrival.c close the one that has waited
     * longest for its request, so slow clients cannot lock everyone else out. */
    unsigned mhd_limit = max_conns + max_conns / 4 + 16 * threads;
    /* Each connection's memory pool (request headers, read buffer, the answer's headers) is
     * zeroed by libmicrohttpd after every request of a keep-alive connection, whatever was
     * used: its size is a cost per request. 32 KB holds ~15 KB of request headers (a heavy
     * cookie jar); 64 KB cost 17 % of the CPU in memset at 80,000 requests/s (bench/http). */
    const size_t conn_memory = (size_t)32 * 1024;
    s->daemon = MHD_start_daemon(
        flags, s->cfg.port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_NOTIFY_CONNECTION,
        pe_http_arrivals_notify, s->arrivals, MHD_OPTION_CONNECTION_MEMORY_LIMIT, conn_memory,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_END);
    if (!s->daemon) {
        pe_http_arrivals_free(s->arrivals);
        s->arrivals = NULL;
        snprintf(err, errlen, "cannot listen on %s:%u (address in use or not permitted)", s->host,
                 (unsigned)s->cfg.port);
        return PE_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    return 0;
}

uint16_t pe_http_server_port(const pe_http_server_t *s)
{
    return s->port;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void pe_http_server_drain(pe_http_server_t *s, unsigned grace_ms)
{
    if (!s || !s->daemon)
        return;
    if (!atomic_exchange(&s->stopping, true)) {
        MHD_socket lsock = MHD_quiesce_daemon(s->daemon);
        if (lsock != MHD_INVALID_SOCKET)
            close(lsock);
    }
    int64_t deadline = pe_now_mono_us() + (int64_t)grace_ms * 1000;
    while (atomic_load(&s->in_flight) > 0 && pe_now_mono_us() < deadline)
        sleep_ms(10);
}

void pe_http_server_stop(pe_http_server_t *s, unsigned grace_ms)
{
    if (!s || !s->daemon)
        return;
    pe_http_server_drain(s, grace_ms);
    /* Whatever is still parked gets a 503 so no connection is left suspended at stop. */
    pthread_mutex_lock(&s->suspended_lock);
    pe_http_request_t *parked = s->suspended;
    s->suspended = NULL;
    pthread_mutex_unlock(&s->suspended_lock);
    for (pe_http_request_t *r = parked, *next; r; r = next) {
        next = r->next_suspended;
        r->suspended = false;
        if (!r->replied)
            pe_http_reply_error(r, PE_EUNAVAIL, "unavailable", "the server is shutting down");
        MHD_resume_connection(r->conn);
    }
    if (parked)
        sleep_ms(50);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    pe_http_arrivals_free(s->arrivals); /* every connection was reported closed by now */
    s->arrivals = NULL;
}

void pe_http_server_free(pe_http_server_t *s)
{
    if (!s)
        return;
    if (s->daemon)
        pe_http_server_stop(s, 0);
    pe_http_router_free(s->router);
    pe_http_metrics_free(s->metrics);
    pthread_mutex_destroy(&s->suspended_lock);
    free(s);
}
