/*
 * fuzz_scenario.c — libFuzzer target for the simulator's scenario parser
 * (pe_sim_scenario_parse), which reads a file the operator names with --scenario.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. The verdict is 0 or PE_EINVAL (PE_ENOMEM only when memory runs out).
 *  2. A refusal leaves *out NULL and has a non-empty, valid-UTF-8 message "<path>: …".
 *  3. An acceptance serialises as the scenario in force, which parses back to a scenario that
 *     serialises to the same text (a fixed point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/sim.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_scenario: invariant failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *in_force(const pe_sim_scenario_t *s)
{
    cJSON *j = pe_sim_scenario_json(s);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* no document: the defaults, covered by the unit tests */
    char *text = malloc(size);
    if (!text)
        abort();
    memcpy(text, data, size);
    pe_sim_scenario_t *s = (pe_sim_scenario_t *)&text; /* must be overwritten */
    char err[512];
    memset(err, 'Z', sizeof err);
    int rc = pe_sim_scenario_parse(text, size, &s, err, sizeof err);
    CHECK(rc == 0 || rc == PE_EINVAL || rc == PE_ENOMEM);
    if (rc != 0) {
        CHECK(s == NULL);
        CHECK(memchr(err, '\0', sizeof err) != NULL);
        CHECK(strlen(err) > 0 && strstr(err, ": ") != NULL);
        CHECK(pe_utf8_valid(err, strlen(err)));
    } else {
        char *first = in_force(s);
        if (first) {
            pe_sim_scenario_t *again = NULL;
            CHECK(pe_sim_scenario_parse(first, strlen(first), &again, err, sizeof err) == 0);
            char *second = in_force(again);
            if (second)
                CHECK(strcmp(first, second) == 0);
            free(second);
            pe_sim_scenario_free(again);
        }
        free(first);
    }
    pe_sim_scenario_free(s);
    free(text);
    return 0;
}
