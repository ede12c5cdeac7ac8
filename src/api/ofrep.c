/*
 * ofrep.c — the OpenFeature Remote Evaluation Protocol (github.com/open-feature/protocol,
 * service/openapi.yaml): POST /ofrep/v1/evaluate/flags/{key} and the bulk
 * POST /ofrep/v1/evaluate/flags, with a publishable key (Bearer pk_… or X-API-Key: pk_…).
 *
 *   answer                                   status  body
 *   evaluated                                200     {"key","value","reason","variant","metadata"}
 *   bulk evaluated                           200     {"flags":[…]} + ETag
 *   bulk, If-None-Match matches the ETag     304     (empty) + ETag
 *   body not JSON                            400     {"key"?,"errorCode":"PARSE_ERROR",…}
 *   context not an object / bad attribute    400     INVALID_CONTEXT
 *   a bucket needed and no targetingKey      400     TARGETING_KEY_MISSING (bulk: per flag)
 *   the flag is quarantined (its stored      400     GENERAL (bulk: per flag): no value, so
 *   definition does not compile)                     the client falls back to its default
 *   no such flag in the key's store          404     FLAG_NOT_FOUND
 *   no key / unknown key; secret key         401 / 403 (the auth middleware)
 *
 * Invariants:
 *  1. Tenant-scoped: the store is the publishable key's; another store's flag is not found.
 *  2. With a warm cache an evaluation touches neither PostgreSQL nor Redis: one read-locked
 *     reference to the store's immutable set, evaluation on the stack, one response buffer.
 *  3. The ETag is a hash of the store, the flag set's version and the request body (the
 *     context): the same context against the same flags gives the same tag on every instance.
 *  4. Exposures are queued (pe_flags_record_exposures) after the answer is built and never
 *     delay or change it; a 304 still records them (the unit saw the flags today).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pe/api.h"
#include "pe/flags.h"
#include "routes.h"

#define JSON_TYPE "application/json"

/* OpenFeature's error shape ({"key","errorCode","errorDetails"}, which its providers read) with
 * the status the error table gives rc. */
static int reply_error(pe_http_request_t *req, int rc_of, const char *key, const char *code,
                       const char *details)
{
    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_buf_puts(&b, "{");
    if (key) {
        rc |= pe_buf_puts(&b, "\"key\":");
        rc |= pe_buf_json_string(&b, key, strlen(key));
        rc |= pe_buf_puts(&b, ",");
    }
    rc |= pe_buf_printf(&b, "\"errorCode\":\"%s\",\"errorDetails\":", code);
    rc |= pe_buf_json_string(&b, details, strlen(details));
    rc |= pe_buf_puts(&b, "}");
    if (rc != 0) {
        pe_buf_free(&b);
        return PE_ENOMEM;
    }
    rc = pe_http_reply(req, pe_error_http_status(rc_of), JSON_TYPE, b.data, b.len);
    pe_buf_free(&b);
    return rc;
}

typedef struct {
    cJSON *body; /* owned */
    pe_flag_context_t ctx;
    pe_flag_set_t *set; /* a reference */
} ofrep_request_t;

static void request_free(ofrep_request_t *r)
{
    cJSON_Delete(r->body);
    pe_flags_set_release(r->set);
}

/* Parses the body and the context and takes the store's set; replies on failure. */
static int prepare(pe_http_request_t *req, const char *key, ofrep_request_t *r)
{
    pe_app_t *app = pe_http_app(req);
    size_t len = 0;
    const char *text = pe_http_body(req, &len);
    char why[256];
    memset(r, 0, sizeof *r);
    if (text && len > 0) {
        if (pe_json_parse(text, len, &r->body, why, sizeof why) != 0) {
            reply_error(req, PE_EINVAL, key, "PARSE_ERROR", why);
            return PE_EINVAL;
        }
        if (!cJSON_IsObject(r->body)) {
            reply_error(req, PE_EINVAL, key, "PARSE_ERROR", "the body must be {\"context\":{…}}");
            return PE_EINVAL;
        }
    }
    const cJSON *context = cJSON_GetObjectItemCaseSensitive(r->body, "context");
    if (pe_flags_context_parse(context, &r->ctx, why, sizeof why) != 0) {
        reply_error(req, PE_EINVAL, key, "INVALID_CONTEXT", why);
        return PE_EINVAL;
    }
    int rc = pe_flags_acquire(app->flags, pe_http_auth(req)->store_id, &r->set);
    if (rc != 0) {
        pe_http_set_header(req, "Retry-After", "1");
        reply_error(req, PE_EUNAVAIL, key, "GENERAL", "flags cannot be read right now; retry");
        return rc;
    }
    return 0;
}

/* Appends one evaluation: success or a per-flag failure. */
static int append_eval(pe_buf_t *b, const pe_flag_set_t *set, const pe_flag_eval_t *e)
{
    const char *key = pe_flags_key(e->flag);
    int rc = pe_buf_puts(b, "{\"key\":");
    rc |= pe_buf_json_string(b, key, strlen(key));
    if (e->reason == PE_FLAG_REASON_ERROR) {
        rc |= pe_buf_printf(b, ",\"errorCode\":\"%s\",\"errorDetails\":", e->error_code);
        rc |= pe_buf_json_string(b, e->error_details, strlen(e->error_details));
        rc |= pe_buf_puts(b, "}");
        return rc;
    }
    size_t vlen = 0;
    const char *value = pe_flags_variant_value(e->flag, e->variant, &vlen);
    const char *variant = pe_flags_variant_key(e->flag, e->variant);
    rc |= pe_buf_puts(b, ",\"value\":");
    rc |= pe_buf_append(b, value, vlen);
    rc |= pe_buf_printf(b, ",\"reason\":\"%s\",\"variant\":", pe_flags_reason_name(e->reason));
    rc |= pe_buf_json_string(b, variant, strlen(variant));
    rc |= pe_buf_printf(
        b,
        ",\"metadata\":{\"flagKind\":\"%s\",\"flagVersion\":%llu,"
        "\"flagSetVersion\":%llu%s}}",
        pe_flags_kind_name(pe_flags_kind(e->flag)), (unsigned long long)pe_flags_version(e->flag),
        (unsigned long long)pe_flags_set_version(set), e->holdout ? ",\"holdout\":true" : "");
    return rc;
}

int pe_api_ofrep_flag(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    const char *key = pe_http_param(req, "key");
    ofrep_request_t r;
    if (prepare(req, key, &r) != 0) {
        request_free(&r);
        return 0;
    }
    int rc = 0;
    const pe_flag_t *flag = pe_flags_set_find(r.set, key);
    if (!flag) {
        rc = reply_error(req, PE_ENOTFOUND, key, "FLAG_NOT_FOUND", "no flag with this key");
        goto out;
    }
    pe_flag_eval_t e;
    pe_flags_evaluate(r.set, flag, &r.ctx, &e);
    pe_flags_count(app->flags, 1);
    if (e.reason == PE_FLAG_REASON_ERROR) {
        rc = reply_error(req, PE_EINVAL, key, e.error_code, e.error_details);
        goto out;
    }
    pe_buf_t b = PE_BUF_INIT;
    rc = pe_buf_reserve(&b, 512);
    rc |= append_eval(&b, r.set, &e);
    if (rc == 0)
        rc = pe_http_reply(req, 200, JSON_TYPE, b.data, b.len);
    pe_buf_free(&b);
    pe_flags_record_exposures(app->flags, pe_http_auth(req)->store_id, &r.ctx, &e, 1);
out:
    request_free(&r);
    return rc;
}

/* "v<setVersion>-<16 hex of SHA-256(store \n version \n body)>", quoted. */
static void etag_of(pe_http_request_t *req, const pe_flag_set_t *set, char out[64])
{
    size_t len = 0;
    const char *body = pe_http_body(req, &len);
    char version[24];
    int vlen = snprintf(version, sizeof version, "\n%llu\n",
                        (unsigned long long)pe_flags_set_version(set));
    crypto_hash_sha256_state st;
    unsigned char d[crypto_hash_sha256_BYTES];
    const char *store = pe_flags_set_store(set);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)store, strlen(store));
    crypto_hash_sha256_update(&st, (const unsigned char *)version, (unsigned long long)vlen);
    if (body && len)
        crypto_hash_sha256_update(&st, (const unsigned char *)body, len);
    crypto_hash_sha256_final(&st, d);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, d, 8);
    snprintf(out, 64, "\"v%llu-%s\"", (unsigned long long)pe_flags_set_version(set), hex);
}

/* If-None-Match lists entity tags ("a", W/"b") or "*". */
static bool none_match(const char *header, const char *etag)
{
    if (!header)
        return false;
    const char *p = header;
    while (*p == ' ')
        p++;
    if (strcmp(p, "*") == 0)
        return true;
    return strstr(header, etag) != NULL;
}

int pe_api_ofrep_bulk(pe_http_request_t *req)
{
    pe_app_t *app = pe_http_app(req);
    ofrep_request_t r;
    pe_flag_eval_t stack_evals[64], *evals = stack_evals;
    pe_buf_t b = PE_BUF_INIT;
    if (prepare(req, NULL, &r) != 0) {
        request_free(&r);
        return 0;
    }
    int rc = PE_ENOMEM;
    size_t n = pe_flags_set_count(r.set);
    if (n > PE_ARRAY_LEN(stack_evals)) {
        evals = malloc(n * sizeof *evals);
        if (!evals)
            goto out;
    }
    for (size_t i = 0; i < n; i++)
        pe_flags_evaluate(r.set, pe_flags_set_at(r.set, i), &r.ctx, &evals[i]);
    pe_flags_count(app->flags, n);
    char etag[64];
    etag_of(req, r.set, etag);
    pe_http_set_header(req, "ETag", etag);
    if (none_match(pe_http_header(req, "If-None-Match"), etag)) {
        rc = pe_http_reply(req, 304, JSON_TYPE, "", 0);
    } else {
        rc = pe_buf_reserve(&b, 64 + 256 * n);
        rc |= pe_buf_puts(&b, "{\"flags\":[");
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i)
                rc |= pe_buf_puts(&b, ",");
            rc |= append_eval(&b, r.set, &evals[i]);
        }
        rc |= pe_buf_puts(&b, "]}");
        if (rc == 0)
            rc = pe_http_reply(req, 200, JSON_TYPE, b.data, b.len);
    }
    pe_flags_record_exposures(app->flags, pe_http_auth(req)->store_id, &r.ctx, evals, n);
out:
    if (evals != stack_evals)
        free(evals);
    pe_buf_free(&b);
    request_free(&r);
    return rc == 0 ? 0 : PE_ENOMEM;
}
