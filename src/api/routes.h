/*
 * routes.h — the handlers of src/api/, private to the module; pe_api_register() in routes.c
 * is the one table that binds them to methods, paths, limits and authentication.
 */
#ifndef PE_API_ROUTES_H
#define PE_API_ROUTES_H

#include "pe/http.h"

int pe_api_healthz(pe_http_request_t *req);
int pe_api_readyz(pe_http_request_t *req);
int pe_api_metrics(pe_http_request_t *req);
int pe_api_login(pe_http_request_t *req);
int pe_api_logout(pe_http_request_t *req);
int pe_api_me(pe_http_request_t *req);
int pe_api_store_get(pe_http_request_t *req);
int pe_api_web(pe_http_request_t *req);
int pe_api_schema_events(pe_http_request_t *req);
int pe_api_sdk(pe_http_request_t *req);

/* Authenticates the write key of a Segment-style request: the Basic-auth user, else a Bearer
 * token, else body_key (the body's "writeKey", may be NULL). Only a publishable key of a live
 * store passes: 0 with *out filled (principal and store_id); otherwise the request has been
 * answered (401 unknown or missing, 403 secret key, 503 database down) and the code is
 * returned. Thread-safe; call from a handler of a PE_AUTH_NONE route. */
int pe_api_authenticate_write_key(pe_http_request_t *req, const char *body_key,
                                  pe_http_auth_t *out);

#endif /* PE_API_ROUTES_H */
