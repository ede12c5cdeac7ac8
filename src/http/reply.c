/*
 * reply.c — the one reply of a request: the pe_http_reply… family, the response headers (the
 * handler's and the standard ones every response carries), and handing the reply to
 * libmicrohttpd once the request's lifecycle (server.c) says it may be sent.
 *
 * A reply is only recorded on the request (replied, status, body, headers) until server.c's
 * on_access calls pe_http_reply_queue on the request's MHD thread: that is what lets a handler
 * of a parked request reply from any thread.
 *
 * Invariants:
 *  1. A request has at most one reply: the first pe_http_reply… call sets it; any later one
 *     returns PE_ECONFLICT and frees or finishes what it was handed (a copy, a cJSON tree, a
 *     stream's done), so a second reply neither replaces the first nor leaks.
 *  2. Every error body has the one shape {"error":{"code":…,"message":…}} (pe_error_json), and
 *     its status is the one the error table gives its PE_E… code (pe_error_http_status):
 *     handlers never pick it by hand. Out of memory for that body: a static 500 of the same shape.
 *  3. Every response carries Content-Type, X-Request-Id and X-Content-Type-Options (pe/http.h
 *     invariant 1). One of a route without PE_ROUTE_CORS, or of no route, also carries the
 *     security headers, its Content-Security-Policy the handler's when it set one, else CSP.
 *  4. Every 503 carries Retry-After: the handler's (events.c, ofrep.c), else RETRY_AFTER_S —
 *     whether it came from pe_http_reply_error (PE_EUNAVAIL or PE_ETIMEOUT: PostgreSQL or Redis
 *     unreachable, or the shutdown answering parked requests), /readyz or any other handler.
 *  5. A reply's body and stream belong to the request until queued, then to libmicrohttpd (a
 *     static body to neither); pe_http_reply_release frees what was never handed over, so a
 *     request that completes unanswered (the client left) leaks nothing.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "http_internal.h"

/* Retry-After of a 503 whose handler named none (invariant 4). */
#define RETRY_AFTER_S "2"

static const char CSP[] = PE_HTTP_CSP_HEAD PE_HTTP_CSP_TAIL;

/* ---- recording the reply --------------------------------------------------------------------- */

bool pe_http_replied(const pe_http_request_t *req)
{
    return req->replied;
}

static int set_reply(pe_http_request_t *req, int status, const char *content_type, char *body,
                     size_t len, bool is_static);

int pe_http_reply_stream(pe_http_request_t *req, int status, const char *content_type,
                         long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                         void *ctx)
{
    pe_http_stream_t *st = req->replied ? NULL : malloc(sizeof *st);
    if (!st) {
        done(ctx);
        if (req->replied)
            return PE_ECONFLICT;
        return pe_http_reply_error(req, PE_ENOMEM, "internal_error", "out of memory");
    }
    *st = (pe_http_stream_t){read, done, ctx};
    req->stream = st;
    return set_reply(req, status, content_type, NULL, 0, true);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    pe_http_stream_t *st = cls;
    long n = st->read(st->ctx, buf, max);
    return n > 0    ? (ssize_t)n
           : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                    : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    pe_http_stream_t *st = cls;
    st->done(st->ctx);
    free(st);
}

int pe_http_set_header(pe_http_request_t *req, const char *name, const char *value)
{
    if (req->nheaders == PE_HTTP_MAX_RESPONSE_HEADERS)
        return PE_ENOMEM;
    pe_http_reply_header_t *h = &req->headers[req->nheaders];
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return PE_ENOMEM;
    }
    req->nheaders++;
    return 0;
}

static int set_reply(pe_http_request_t *req, int status, const char *content_type, char *body,
                     size_t len, bool is_static)
{
    if (req->replied) {
        if (!is_static)
            free(body);
        return PE_ECONFLICT;
    }
    req->replied = true;
    req->status = status;
    req->content_type = content_type;
    req->resp_body = body;
    req->resp_len = len;
    req->resp_static = is_static;
    return 0;
}

int pe_http_reply(pe_http_request_t *req, int status, const char *content_type, const void *body,
                  size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return set_reply(req, 500, "application/json", NULL, 0, true);
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    return set_reply(req, status, content_type, copy, len, false);
}

int pe_http_reply_static(pe_http_request_t *req, int status, const char *content_type,
                         const void *body, size_t len)
{
    return set_reply(req, status, content_type, (char *)body, len, true);
}

int pe_http_reply_json(pe_http_request_t *req, int status, const char *json, size_t len)
{
    return pe_http_reply(req, status, "application/json", json, len);
}

int pe_http_reply_cjson(pe_http_request_t *req, int status, cJSON *j)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text)
        return pe_http_reply_error(req, PE_ENOMEM, "internal_error", "out of memory");
    return set_reply(req, status, "application/json", text, strlen(text), false);
}

static int reply_error_body(pe_http_request_t *req, int rc, const char *code, const char *msg)
{
    pe_buf_t b = PE_BUF_INIT;
    if (pe_error_json(&b, code && code[0] ? code : pe_error_code(rc), msg) != 0) {
        pe_buf_free(&b);
        static const char oom[] =
            "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
        return set_reply(req, 500, "application/json", (char *)oom, sizeof oom - 1, true);
    }
    size_t len = b.len;
    return set_reply(req, pe_error_http_status(rc), "application/json", pe_buf_steal(&b), len,
                     false);
}

int pe_http_reply_error(pe_http_request_t *req, int rc, const char *code, const char *fmt, ...)
{
    char msg[PE_REFUSAL_MESSAGE_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    return reply_error_body(req, rc, code, msg);
}

int pe_http_reply_refusal(pe_http_request_t *req, int rc, const pe_refusal_t *r)
{
    return reply_error_body(req, rc, r->code, r->message);
}

/* ---- sending it ------------------------------------------------------------------------------ */

static bool handler_set(const pe_http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return true;
    return false;
}

static void add_standard_headers(pe_http_request_t *req, struct MHD_Response *resp)
{
    const pe_http_route_t *route = req->routed ? req->match.route : NULL;
    unsigned flags = route ? route->flags : 0;
    MHD_add_response_header(resp, "Content-Type", req->content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!(flags & PE_ROUTE_STATIC))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (flags & PE_ROUTE_CORS) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "ETag, X-Request-Id");
    } else {
        if (!handler_set(req, "Content-Security-Policy")) /* else the handler's replaces it */
            MHD_add_response_header(resp, "Content-Security-Policy", CSP);
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
        MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    }
    if (req->allow[0])
        MHD_add_response_header(resp, "Allow", req->allow);
    /* Invariant 4: every 503 is temporary by definition, so it says when to come back. */
    if (req->status == 503 && !handler_set(req, "Retry-After"))
        MHD_add_response_header(resp, "Retry-After", RETRY_AFTER_S);
    if (atomic_load_explicit(&req->srv->stopping, memory_order_relaxed))
        MHD_add_response_header(resp, "Connection", "close");
    for (size_t i = 0; i < req->nheaders; i++)
        MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value);
}

enum MHD_Result pe_http_reply_queue(pe_http_request_t *req)
{
    struct MHD_Response *resp;
    if (req->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read,
                                                 req->stream, stream_free);
        if (resp)
            req->stream = NULL; /* the response owns it now */
    } else if (req->resp_static) {
        resp =
            MHD_create_response_from_buffer(req->resp_len, req->resp_body, MHD_RESPMEM_PERSISTENT);
    } else {
        resp =
            MHD_create_response_from_buffer(req->resp_len, req->resp_body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            req->resp_body = NULL; /* the response owns it now */
    }
    if (!resp)
        return MHD_NO;
    add_standard_headers(req, resp);
    req->queued = true;
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return r;
}

void pe_http_reply_release(pe_http_request_t *req)
{
    if (!req->resp_static)
        free(req->resp_body);
    req->resp_body = NULL;
    if (req->stream)
        stream_free(req->stream);
    req->stream = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    req->nheaders = 0;
}
