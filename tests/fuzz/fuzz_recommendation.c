/*
 * fuzz_recommendation.c — libFuzzer target for what a merchant sends the recommendation routes:
 * the list's query string (pe_query_parse, then pe_doctor_status_parse on its "status") and the
 * approve and reject bodies (pe_json_parse, then pe_doctor_decision_parse).
 *
 * Input: byte 0 picks the surface (0 the list's query, 1 an approve body, 2 a reject body); the
 * rest is the raw query string or body, copied into an exactly-sized heap buffer so a read past
 * its length is an ASan error.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. pe_doctor_status_parse returns 0 with a mask of known statuses only, non-empty, and the
 *     names of the mask joined by "," parse back to the same mask; or PE_EINVAL with a message
 *     starting "status: ".
 *  2. pe_doctor_decision_parse returns 0 or PE_EINVAL with a non-empty code and message; on 0 a
 *     reject's reason is NULL or a string of 1..4000 bytes without control characters, and an
 *     approve has no reason; confirm or force are only true when the body said so.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/doctor.h"
#include "pe/http.h"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void statuses(const char *s)
{
    unsigned mask = 0;
    pe_refusal_t err;
    pe_refusal_clear(&err);
    int rc = pe_doctor_status_parse(s, &mask, &err);
    if (rc != 0) {
        check(rc == PE_EINVAL && strncmp(err.message, "status: ", 8) == 0);
        return;
    }
    check(mask != 0 && mask < (1u << PE_DOCTOR_STATUSES));
    char back[128] = "";
    for (int k = 0; k < PE_DOCTOR_STATUSES; k++)
        if (mask & (1u << k)) {
            strcat(back, back[0] ? "," : "");
            strcat(back, PE_DOCTOR_STATUS_NAMES[k]);
        }
    unsigned again = 0;
    check(pe_doctor_status_parse(back, &again, &err) == 0 && again == mask);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int surface = data[0] % 3;
    size_t len = size - 1;
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, len);
    text[len] = '\0';
    if (surface == 0) {
        pe_query_t q;
        memset(&q, 0, sizeof q);
        if (pe_query_parse(text, len, &q) == 0) {
            const char *s = pe_query_get(&q, "status");
            if (s)
                statuses(s);
        }
        pe_query_free(&q);
        statuses(text); /* the parser on raw bytes too */
    } else {
        cJSON *body = NULL;
        char why[128];
        if (pe_json_parse(text, len, &body, why, sizeof why) == 0) {
            pe_doctor_decision_t d;
            pe_refusal_t err;
            pe_refusal_clear(&err);
            bool approve = surface == 1;
            int rc = pe_doctor_decision_parse(body, approve, &d, &err);
            if (rc != 0) {
                check(rc == PE_EINVAL && err.code[0] && err.message[0]);
            } else if (approve) {
                check(!d.reason);
                check(!d.force || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "force")));
                check(!d.confirm ||
                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "confirm")));
            } else if (d.reason) {
                size_t n = strlen(d.reason);
                check(n >= 1 && n <= 4000 && !pe_text_has_control(d.reason, n));
            }
            cJSON_Delete(body);
        }
    }
    free(text);
    return 0;
}
