/*
 * notifications.c — a store's in-app notifications over HTTP:
 *   GET  /api/v1/stores/{storeId}/notifications?unread=true|false&limit=1..100&cursor=…
 *   POST /api/v1/stores/{storeId}/notifications/{notificationId}/read
 *
 * Invariants:
 *  1. The store is the one authentication resolved; a notification of another store is a 404
 *     (the service filters by store_id).
 *  2. Refusals keep the one error shape {"error":{"code","message"}}, the message naming the
 *     parameter ("limit: must be an integer 1..100").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pe/api.h"
#include "pe/changeset.h"
#include "routes.h"

static int reply_refusal(pe_http_request_t *req, int rc, const pe_changeset_result_t *res,
                         const char *what)
{
    if (res->refusal.code[0])
        return pe_http_reply_refusal(req, rc, &res->refusal);
    if (rc == PE_ENOTFOUND)
        return pe_http_reply_error(req, PE_ENOTFOUND, "not_found",
                                   "no such notification in this store");
    return pe_http_reply_error(req, rc, NULL, "%s", what);
}

int pe_api_notifications_list(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    pe_notification_query_t q = {.cursor = pe_http_query(req, "cursor")};
    const char *unread = pe_http_query(req, "unread"), *limit = pe_http_query(req, "limit");
    if (unread && strcmp(unread, "true") != 0 && strcmp(unread, "false") != 0)
        return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                   "unread: must be true or false");
    q.unread_only = unread && strcmp(unread, "true") == 0;
    if (limit) {
        char *end = NULL;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || end == limit || *end || v < 1 || v > 100)
            return pe_http_reply_error(req, PE_EINVAL, "invalid_request",
                                       "limit: must be an integer 1..100");
        q.limit = (unsigned)v;
    }
    cJSON *out = NULL;
    pe_changeset_result_t res;
    int rc = pe_changeset_notifications_list(app->changesets, pe_http_auth(req)->store_id, &q, &out,
                                             &res);
    if (rc != 0)
        return reply_refusal(req, rc, &res, "cannot list the notifications");
    return pe_http_reply_cjson(req, 200, out);
}

int pe_api_notification_read(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    cJSON *out = NULL;
    pe_changeset_result_t res;
    int rc = pe_changeset_notification_read(app->changesets, pe_http_auth(req)->store_id,
                                            pe_http_param(req, "notificationId"), &out, &res);
    if (rc != 0)
        return reply_refusal(req, rc, &res, "cannot mark the notification read");
    return pe_http_reply_cjson(req, 200, out);
}
