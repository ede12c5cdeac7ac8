/*
 * http_internal.h — what the files of src/http share and nothing outside it sees.
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

#include <stdbool.h>

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

#endif /* PE_HTTP_INTERNAL_H */
