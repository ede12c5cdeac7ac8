/*
 * fuzz_stats_input.c — libFuzzer target for the `stats analyze` input path: the strict parser
 * (pe_stats_input_parse), the analysis, the decision helper when a plan came, and the JSON
 * writer.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. The parser returns 0 or PE_EINVAL; a refusal has a code from the documented list and a
 *     non-empty message; the error object it becomes is valid JSON.
 *  2. Accepted input analyses with 0 (never PE_EINVAL: the parser checked everything the
 *     analysis checks) or, at worst, PE_EINTERNAL; the decision likewise.
 *  3. The JSON answer parses back as one object, and no number in it is NaN or infinite, and
 *     the text holds no bare word but true/false/null: undefined values are null.
 *  4. p-values, chances, SRM p and power lie in [0, 1]; risks are ≥ 0; ciLow ≤ estimate ≤
 *     ciHigh whenever all three are numbers.
 *
 * The input is copied into an exactly-sized heap buffer so a read past its end is an ASan
 * error. Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/stats.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_stats_input: invariant failed at line %d: %s\n", __LINE__,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const CODES[] = {"invalid_json",  "invalid_type",    "missing_field",
                                    "unknown_field", "duplicate_field", "mismatched_arms",
                                    "out_of_range",  "inconsistent"};

static bool known_code(const char *code)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(CODES); i++)
        if (strcmp(code, CODES[i]) == 0)
            return true;
    return false;
}

static void all_numbers_finite(const cJSON *j)
{
    for (; j; j = j->next) {
        if (cJSON_IsNumber(j))
            CHECK(isfinite(j->valuedouble));
        all_numbers_finite(j->child);
    }
}

/* Outside strings, the only bare words JSON text may hold are true, false and null (so no
 * NaN, Infinity, nan or inf slipped through a printf). */
static bool bare_words_ok(const char *s)
{
    bool in_string = false;
    for (const char *p = s; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_string = false;
            continue;
        }
        if (*p == '"') {
            in_string = true;
        } else if (isalpha((unsigned char)*p) && *p != 'e' && *p != 'E') {
            static const char *const words[] = {"true", "false", "null"};
            size_t w = 0;
            while (w < PE_ARRAY_LEN(words) && strncmp(p, words[w], strlen(words[w])) != 0)
                w++;
            if (w == PE_ARRAY_LEN(words))
                return false;
            p += strlen(words[w]) - 1;
        }
    }
    return true;
}

static void unit_interval(double x)
{
    CHECK(isnan(x) || (x >= 0 && x <= 1));
}

static void check_result(const pe_stats_result_t *r)
{
    unit_interval(r->effect.p_value);
    unit_interval(r->chance_to_win);
    unit_interval(r->srm.p_value);
    unit_interval(r->achieved_power);
    CHECK(isnan(r->risk[0]) || r->risk[0] >= 0);
    CHECK(isnan(r->risk[1]) || r->risk[1] >= 0);
    if (!isnan(r->effect.ci_low) && !isnan(r->effect.ci_high) && !isnan(r->effect.estimate))
        CHECK(r->effect.ci_low <= r->effect.estimate && r->effect.estimate <= r->effect.ci_high);
    CHECK(isnan(r->mde_relative) || r->mde_relative >= 0);
}

static void check_json(const pe_buf_t *b)
{
    CHECK(b->data != NULL);
    CHECK(bare_words_ok(b->data));
    cJSON *j = cJSON_ParseWithLength(b->data, b->len);
    CHECK(j != NULL && cJSON_IsObject(j));
    all_numbers_finite(j->child);
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    pe_stats_input_t in;
    pe_stats_plan_t plan;
    pe_refusal_t err;
    bool has_plan = false;
    double runtime = 0;
    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_stats_input_parse(text, size, &in, &plan, &has_plan, &runtime, &err);
    CHECK(rc == 0 || rc == PE_EINVAL);
    if (rc != 0) {
        CHECK(memchr(err.code, '\0', sizeof err.code) && known_code(err.code));
        CHECK(memchr(err.message, '\0', sizeof err.message) && err.message[0] != '\0');
        CHECK(pe_refusal_json(&err, &b) == 0);
        check_json(&b);
        goto out;
    }
    pe_stats_result_t r;
    rc = pe_stats_analyze(&in, &r, &err);
    CHECK(rc == 0 || rc == PE_EINTERNAL);
    if (rc != 0)
        goto out;
    check_result(&r);
    pe_stats_decision_t d;
    if (has_plan) {
        rc = pe_stats_decide(&in, &plan, runtime, &d, &err);
        CHECK(rc == 0 || rc == PE_EINTERNAL);
        if (rc != 0)
            goto out;
        CHECK(d.reasons != 0 && (unsigned)d.verdict <= PE_STATS_ROLLBACK);
    }
    CHECK(pe_stats_result_json(&r, has_plan ? &d : NULL, &b) == 0);
    check_json(&b);
out:
    pe_buf_free(&b);
    free(text);
    return 0;
}
