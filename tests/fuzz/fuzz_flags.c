/*
 * fuzz_flags.c — libFuzzer target for the two flag parsers of untrusted input: the flag
 * definition validator (the admin API's body, pe_flags_validate) and the OFREP context reader
 * (pe_flags_context_parse); what validates is compiled (pe_flags_set_from_json) and evaluated.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. A refusal has a non-empty NUL-terminated "<path>: …" message and leaves *canonical NULL.
 *  2. An acceptance is a fixed point: validating the canonical form again accepts it and gives
 *     the same text; with a salt and a version it compiles into a set holding that one flag,
 *     not quarantined: what the API accepts, the compiled set accepts (1e400 printed as null
 *     once broke this).
 *  3. Evaluation of a compiled flag gives a variant index inside the flag (or ERROR with
 *     TARGETING_KEY_MISSING), for the context the input carries and for an empty one.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/flags.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_flags: invariant failed at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool ready;

static void evaluate(const pe_flag_set_t *set, const pe_flag_context_t *ctx)
{
    const pe_flag_t *f = pe_flags_set_at(set, 0);
    CHECK(f != NULL);
    pe_flag_eval_t e;
    pe_flags_evaluate(set, f, ctx, &e);
    if (e.reason == PE_FLAG_REASON_ERROR)
        CHECK(e.variant == -1 && strcmp(e.error_code, "TARGETING_KEY_MISSING") == 0);
    else
        CHECK(pe_flags_variant_key(f, e.variant) != NULL);
}

static void check_flag(const cJSON *body, const pe_flag_context_t *ctx)
{
    cJSON *canon = NULL, *again = NULL;
    pe_refusal_t err;
    int rc = pe_flags_validate(body, false, &canon, &err);
    if (rc == PE_ENOMEM)
        return;
    if (rc != 0) {
        CHECK(rc == PE_EINVAL && canon == NULL);
        CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
        CHECK(err.message[0] && strstr(err.message, ": ") != NULL);
        return;
    }
    rc = pe_flags_validate(canon, false, &again, &err);
    CHECK(rc == 0 || rc == PE_ENOMEM);
    char *a = cJSON_PrintUnformatted(canon), *b = again ? cJSON_PrintUnformatted(again) : NULL;
    if (a && b)
        CHECK(strcmp(a, b) == 0);
    free(b);
    cJSON_Delete(again);
    if (a) {
        char *doc = NULL;
        size_t n = strlen(a);
        /* the canonical object plus salt and version, in a one-flag set */
        if (asprintf(&doc,
                     "{\"storeId\":\"s\",\"version\":1,\"holdout\":{\"percentage\":5,\"salt\":"
                     "\"h\"},\"flags\":[%.*s,\"salt\":\"fz\",\"version\":1}]}",
                     (int)(n - 1), a) > 0) {
            pe_flag_set_t *set = pe_flags_set_from_json(doc, strlen(doc));
            CHECK(set != NULL); /* only ENOMEM could refuse it, and the fuzzer has memory */
            if (set) {
                CHECK(pe_flags_set_count(set) == 1);
                CHECK(pe_flags_set_quarantined(set) == 0);
                evaluate(set, ctx);
                pe_flag_context_t empty;
                memset(&empty, 0, sizeof empty);
                evaluate(set, &empty);
                pe_flags_set_release(set);
            }
            free(doc);
        }
    }
    free(a);
    cJSON_Delete(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        pe_crypto_init();
        pe_log_set_level(PE_LOG_ERROR);
        ready = true;
    }
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    cJSON *body = NULL;
    char why[128];
    if (pe_json_parse(text, size, &body, why, sizeof why) == 0) {
        pe_flag_context_t ctx;
        char err[256];
        const cJSON *context = cJSON_GetObjectItemCaseSensitive(body, "context");
        int rc = pe_flags_context_parse(context, &ctx, err, sizeof err);
        CHECK(rc == 0 || rc == PE_EINVAL);
        if (rc != 0) {
            CHECK(err[0] != '\0');
            memset(&ctx, 0, sizeof ctx);
        }
        ctx.targeting_key = ctx.targeting_key ? ctx.targeting_key : "unit";
        check_flag(body, &ctx);
    }
    cJSON_Delete(body);
    free(text);
    return 0;
}
