/*
 * error.c — the one table that gives every PE_E… code its description, its machine code for
 * error bodies and its HTTP status. Adding a code means adding one row here.
 */
#include "pe/core.h"

typedef struct {
    int rc;
    const char *text;
    const char *code;
    int http_status;
} error_row_t;

static const error_row_t ERRORS[] = {
    {PE_OK, "ok", "ok", 200},
    {PE_EINVAL, "invalid input", "invalid_request", 400},
    {PE_ENOMEM, "out of memory", "internal_error", 500},
    {PE_ENOTFOUND, "not found", "not_found", 404},
    {PE_ECONFLICT, "conflict", "conflict", 409},
    {PE_EUNAUTH, "authentication required", "unauthorized", 401},
    {PE_EFORBIDDEN, "forbidden", "forbidden", 403},
    {PE_EUNAVAIL, "service unavailable", "unavailable", 503},
    {PE_ETOOBIG, "too large", "payload_too_large", 413},
    {PE_ETIMEOUT, "timed out", "timeout", 503},
    {PE_EIO, "i/o error", "internal_error", 500},
    {PE_EINTERNAL, "internal error", "internal_error", 500},
    {PE_ELOCKED, "too many attempts", "too_many_requests", 429},
    {PE_EMETHOD, "method not allowed", "method_not_allowed", 405},
    {PE_EMEDIA, "unsupported media type", "unsupported_media_type", 415},
    {PE_EPRECONDITION, "precondition required", "precondition_required", 428},
};

static const error_row_t *lookup(int rc)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(ERRORS); i++)
        if (ERRORS[i].rc == rc)
            return &ERRORS[i];
    return lookup(PE_EINTERNAL); /* unknown codes are internal errors */
}

const char *pe_strerror(int rc)
{
    return lookup(rc)->text;
}

const char *pe_error_code(int rc)
{
    return lookup(rc)->code;
}

int pe_error_http_status(int rc)
{
    return lookup(rc)->http_status;
}
