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

#endif /* PE_API_ROUTES_H */
