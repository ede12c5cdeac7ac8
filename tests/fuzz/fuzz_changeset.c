/*
 * fuzz_changeset.c — libFuzzer target for the ChangeSet contract's validator: the JSON guard
 * (pe_json_parse) and pe_changeset_validate in both modes, the validator that stands between
 * POST/PATCH /api/v1/stores/{storeId}/changesets and PostgreSQL. Seeded from
 * tests/corpus/changesets/valid and invalid (tests/CMakeLists.txt).
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. The verdict is 0 or PE_EINVAL and the same (code, path, message) when run twice.
 *  2. A refusal has a known code, a NUL-terminated valid-UTF-8 message that starts with its
 *     path followed by ": " (or is about the document itself when the path is empty).
 *  3. FULL mode accepts nothing CLIENT mode refuses.
 *  4. An accepted document survives print → parse → validate unchanged in verdict.
 *
 * The input is copied into an exactly-sized heap buffer so a read past its end is an ASan error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/changeset.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_changeset: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const CODES[] = {"missing_field", "invalid_type",  "out_of_range",  "too_long",
                                    "too_many",      "unknown_field", "invalid_format"};

static void check_refusal(const pe_refusal_t *e)
{
    bool known = false;
    for (size_t i = 0; i < PE_ARRAY_LEN(CODES); i++)
        known = known || strcmp(e->code, CODES[i]) == 0;
    CHECK(known);
    CHECK(memchr(e->message, '\0', sizeof e->message) != NULL);
    size_t n = strlen(e->message);
    CHECK(n > 0 && pe_utf8_valid(e->message, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    if (size)
        memcpy(text, data, size);
    cJSON *doc = NULL;
    char why[128];
    if (pe_json_parse(text, size, &doc, why, sizeof why) == 0) {
        pe_refusal_t a, b, c;
        int full = pe_changeset_validate(doc, PE_CHANGESET_FULL, &a);
        int again = pe_changeset_validate(doc, PE_CHANGESET_FULL, &b);
        int client = pe_changeset_validate(doc, PE_CHANGESET_CLIENT, &c);
        CHECK(full == 0 || full == PE_EINVAL);
        CHECK(full == again);
        CHECK(client == 0 || client == PE_EINVAL);
        CHECK(!(full == 0 && client != 0));
        if (full != 0) {
            check_refusal(&a);
            CHECK(strcmp(a.code, b.code) == 0 && strcmp(a.message, b.message) == 0);
        }
        if (client != 0)
            check_refusal(&c);
        if (client == 0) {
            char *printed = cJSON_PrintUnformatted(doc);
            cJSON *back = NULL;
            if (printed && pe_json_parse(printed, strlen(printed), &back, why, sizeof why) == 0)
                CHECK(pe_changeset_validate(back, PE_CHANGESET_CLIENT, &c) == 0);
            cJSON_Delete(back);
            free(printed);
        }
    }
    cJSON_Delete(doc);
    free(text);
    return 0;
}
