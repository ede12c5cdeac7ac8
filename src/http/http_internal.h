/*
 * http_internal.h — what the files of src/http share and nothing outside it sees:
 *
 *   server.c        the request lifecycle (libmicrohttpd's callbacks), the request and server
 *                   objects below, start and graceful stop
 *   reply.c         replies: the one reply of a request, its headers, queueing it
 *   http_metrics.c  the per-route counters and histograms, and their Prometheus text
 *   arrival.c       deadlines on slow requests (below)
 *
 * The request and server structs are defined here so that those files share them; only
 * server.c creates or frees either.
 *
 * arrival.c: how long a request may take to reach the server in full. libmicrohttpd's own
 * timeout (PE_CONNECTION_TIMEOUT) is an idle timeout: every byte that arrives restarts it, so a
 * client that trickles one byte every few seconds ("slowloris") keeps a connection, and its
 * share of PE_MAX_CONNECTIONS, for ever. These deadlines count from the start of each phase,
 * whatever trickles in:
 *
 *   accepted ─────────▶ WAITING ──headers complete──▶ BODY ──body complete──▶ HANDLING
 *   (deadline: header)     ▲      (deadline: body,            (no deadline: the server is
 *                          │       when a body is sent)        working or answering)
 *                          └──────────────── response sent (deadline: idle + header) ──┘
 *
 *   transition          function                     where
 *   → WAITING           pe_http_arrivals_notify      MHD_CONNECTION_NOTIFY_STARTED
 *   WAITING → BODY      pe_http_arrival_headers_done on_access, first call of a request
 *   BODY → HANDLING     pe_http_arrival_body_done    on_access, last upload call
 *   HANDLING → WAITING  pe_http_arrival_request_done on_completed (keep-alive: the next request)
 *   any → closed        the reaper thread            deadline passed: shutdown(2) of the socket
 */
#ifndef PE_HTTP_INTERNAL_H
#define PE_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "pe/http.h"

typedef struct pe_http_arrivals pe_http_arrivals_t;
typedef struct pe_http_arrival pe_http_arrival_t;

typedef struct {
    unsigned header_timeout_s; /* PE_HEADER_TIMEOUT: request line and headers, in full */
    unsigned body_timeout_s;   /* PE_BODY_TIMEOUT: the body, in full, from the end of the headers */
    unsigned idle_timeout_s;   /* PE_CONNECTION_TIMEOUT: a keep-alive connection between requests */
    unsigned max_connections;  /* PE_MAX_CONNECTIONS */
} pe_http_arrivals_config_t;

/* Starts the reaper thread. Returns NULL when out of memory or threads. Free it only after
 * MHD_stop_daemon: every connection must have been reported closed. */
pe_http_arrivals_t *pe_http_arrivals_new(const pe_http_arrivals_config_t *cfg);
/* Stops the reaper. Accepts NULL. */
void pe_http_arrivals_free(pe_http_arrivals_t *a);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the pe_http_arrivals_t). On STARTED the connection
 * is tracked, and when more than max_connections are open, the one that has waited longest for
 * its next request (never one that is sending a body or being answered) is closed to make room:
 * the newcomer when every other connection is busy. On CLOSED it is forgotten. */
void pe_http_arrivals_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode code);

/* The connection's tracker, or NULL (a connection the notifier never saw). */
pe_http_arrival_t *pe_http_arrival_of(struct MHD_Connection *conn);
/* The request's headers are complete; the body must arrive within body_timeout_s when
 * expects_body. Lock-free; called by the connection's MHD thread. Accept NULL. */
void pe_http_arrival_headers_done(pe_http_arrival_t *t, bool expects_body);
/* The whole request arrived: no deadline while the server works and answers. */
void pe_http_arrival_body_done(pe_http_arrival_t *t);
/* The response was sent: a keep-alive connection may idle, then send its next headers. */
void pe_http_arrival_request_done(pe_http_arrival_t *t);

/* Appends the Prometheus text of the connection gauges and closings. Returns 0 or PE_ENOMEM. */
int pe_http_arrivals_metrics(pe_http_arrivals_t *a, pe_buf_t *out);

/* ---- the per-route request metrics (http_metrics.c) ------------------------------------------ */

/* One slot of counters per route, plus one (index: the route count) for unmatched requests. */
typedef struct pe_http_metrics pe_http_metrics_t;

/* Returns zeroed counters for nroutes routes and the unmatched slot, or NULL when out of memory.
 * The caller owns them: pe_http_metrics_free. */
pe_http_metrics_t *pe_http_metrics_new(size_t nroutes);
/* Accepts NULL. */
void pe_http_metrics_free(pe_http_metrics_t *m);
/* Counts one finished request of slot: its status (one outside 0..599 is not counted by status)
 * and its duration. Lock-free: any MHD thread, while /metrics reads. */
void pe_http_metrics_count(pe_http_metrics_t *m, size_t slot, int status, double seconds);
/* Counts one request body of slot decoded whole from coding. Lock-free. */
void pe_http_metrics_count_decoded(pe_http_metrics_t *m, size_t slot, pe_http_coding_t coding);

/* ---- the server and its requests (server.c; replies in reply.c) ------------------------------ */

#define PE_HTTP_MAX_RESPONSE_HEADERS 16

struct pe_http_server {
    pe_http_server_config_t cfg;
    char host[256];
    pe_http_router_t *router;
    struct MHD_Daemon *daemon;
    uint16_t port;
    char id_prefix[13];
    _Atomic uint64_t next_id;
    _Atomic long in_flight;
    _Atomic bool stopping;
    pe_http_metrics_t *metrics; /* owned */
    pthread_mutex_t suspended_lock;
    pe_http_request_t *suspended; /* list of parked requests, for shutdown */
    pe_http_arrivals_t *arrivals; /* deadlines on slow requests (arrival.c) */
};

/* Where on_access is in a request (the diagram in server.c). */
typedef enum { PE_HTTP_PHASE_NEW = 0, PE_HTTP_PHASE_BODY, PE_HTTP_PHASE_HANDLED } pe_http_phase_t;

/* A response header a handler set (pe_http_set_header): both strings owned. */
typedef struct {
    char *name;
    char *value;
} pe_http_reply_header_t;

/* A streamed response body: owned by the request until queued, then by the MHD response. */
typedef struct {
    long (*read)(void *ctx, char *buf, size_t max);
    void (*done)(void *ctx);
    void *ctx;
} pe_http_stream_t;

struct pe_http_request {
    pe_http_server_t *srv;
    struct MHD_Connection *conn;
    pe_http_phase_t phase;
    char *uri;
    size_t path_len;
    const char *method;
    bool routed;
    pe_route_match_t match;
    pe_query_t query;
    const char *content_length;    /* the headers, read once when they are complete */
    const char *transfer_encoding; /* (libmicrohttpd owns both for the request's life) */
    bool has_body;
    pe_http_arrival_t *arrival; /* the connection's deadlines; NULL when untracked */
    pe_buf_t body;
    size_t drained; /* bytes past a refusal; for an encoded body every encoded byte */
    bool body_too_big;
    pe_http_coding_t coding;     /* the body's Content-Encoding (begin) */
    pe_http_decoder_t *decoder;  /* owned; only for a coding other than identity */
    int decode_rc;               /* the decoder's failure, 0 while there is none */
    cJSON *json;                 /* the parsed body, in json_arena when that is set */
    pe_json_arena_t *json_arena; /* pe_http_json_body_arena: the tree is freed with it */
    pe_http_auth_t auth;
    /* response: set through reply.c; on_uri sets the defaults, begin() the Allow list */
    bool replied;
    bool queued;
    int status;
    char *resp_body; /* owned unless resp_static */
    size_t resp_len;
    bool resp_static;
    pe_http_stream_t *stream; /* a streamed body (pe_http_reply_stream); owned until queued */
    const char *content_type;
    pe_http_reply_header_t headers[PE_HTTP_MAX_RESPONSE_HEADERS];
    size_t nheaders;
    char allow[64];
    /* parking */
    bool async;     /* the handler parked the request: set and read on MHD threads only */
    bool suspended; /* in the server's parked list: guarded by suspended_lock */
    pe_http_request_t *next_suspended;
    int64_t start_us;
    char request_id[72];
    char remote[PE_IP_TEXT_LEN]; /* the client (pe_http_remote_addr); "" until resolved */
    char peer[PE_IP_TEXT_LEN];   /* the TCP peer */
    bool forwarded;              /* remote came from X-Forwarded-For of a trusted peer */
};

/* ---- replies (reply.c) ----------------------------------------------------------------------- */

/* Hands the reply the handler set (req->replied) to libmicrohttpd with the standard headers, and
 * marks it queued. Call at most once per request, on its MHD thread, from on_access. Returns
 * MHD_queue_response's answer, or MHD_NO when out of memory (libmicrohttpd then closes the
 * connection). The body passes to libmicrohttpd, except a static one, which it only borrows. */
enum MHD_Result pe_http_reply_queue(pe_http_request_t *req);
/* Frees what the reply still owns: a body or stream never handed to libmicrohttpd, and the
 * handler's headers. Call once, from on_completed. */
void pe_http_reply_release(pe_http_request_t *req);

#endif /* PE_HTTP_INTERNAL_H */
