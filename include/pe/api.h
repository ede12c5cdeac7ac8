/*
 * pe/api.h — the HTTP API: translates requests into calls on the domain modules. Handlers hold
 * no business rules; they parse, authorise, call, and reply.
 *
 * Invariants:
 *  1. Every /api/v1/stores/{storeId}/… route is authorised for exactly that store: a secret key
 *     only for its own store, a session only for stores its user is a member of.
 *  2. Storefront routes accept only publishable keys; admin routes never accept them.
 */
#ifndef PE_API_H
#define PE_API_H

#include "pe/collector.h"
#include "pe/core.h"
#include "pe/db.h"
#include "pe/flags.h"
#include "pe/http.h"
#include "pe/redis.h"
#include "pe/tenancy.h"

/* The application: everything a handler may reach, built once by main.c. */
typedef struct {
    const pe_config_t *cfg;
    pe_db_pool_t *db;
    pe_redis_t *redis;
    pe_http_server_t *http;
    pe_collector_t *collector;
    pe_key_cache_t *keys; /* publishable keys in memory (NULL: every lookup asks PostgreSQL) */
    pe_flags_t *flags;    /* feature flags: the in-process copy, changes, exposures */
    struct pe_changeset_service *changesets;   /* ChangeSets, lifecycle, audit (pe/changeset.h) */
    struct pe_doctor_recommender *recommender; /* recommendations (pe/doctor.h) */
    pe_ratelimit_t *rate_key;     /* storefront requests per publishable key (NULL: no limit) */
    pe_ratelimit_t *rate_address; /* storefront requests per client address (NULL: no limit) */
    int64_t started_unix_us;
} pe_app_t;

/* The session cookie's name. */
#define PE_SESSION_COOKIE "pe_session"

/* Adds every route of the product to router. Returns 0 or PE_EINVAL / PE_ENOMEM. */
int pe_api_register(pe_http_router_t *router);
/* The server's authentication hook (see pe_http_server_config_t.authenticate); app is a
 * pe_app_t. Thread-safe. */
int pe_api_authenticate(void *app, pe_http_request_t *req, pe_auth_kind_t required,
                        pe_http_auth_t *out);

#endif /* PE_API_H */
