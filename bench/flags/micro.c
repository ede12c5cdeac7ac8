/*
 * micro.c — the in-process flag evaluation microbenchmark (issue 6's gate: one evaluation
 * ≤ 1 µs). Builds a store flag set of 20 flags the way Redis holds it, then evaluates a 50/50
 * experiment flag (the worst case: a rule checked, one SHA-256 for the bucket; an autopilot flag
 * with the store holdout costs two) for ≥ 1,000,000 distinct targeting keys and prints ns/eval.
 *
 * usage: flags_micro [evaluations]   (default 2,000,000; built by CMake as target flags_micro)
 * Prints one JSON line: {"evaluations":N,"ns_per_eval":…,"cpu_ns_per_eval":…,
 * "autopilot_ns_per_eval":…,"autopilot_cpu_ns_per_eval":…,"checksum":…} — wall time and this
 * thread's CPU time (the honest figure on a machine shared with other work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pe/core.h"
#include "pe/flags.h"

static pe_flag_set_t *build_set(void)
{
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"storeId\":\"bench\",\"version\":1,\"holdout\":{\"percentage\":5,\"salt\":"
                    "\"bench\"},\"flags\":[");
    for (int i = 0; i < 20; i++) {
        const char *kind = i == 1 ? "autopilot" : "experiment";
        pe_buf_printf(&b,
                      "%s{\"key\":\"flag-%02d\",\"kind\":\"%s\",\"enabled\":true,"
                      "\"rolloutPercentage\":100,\"salt\":\"salt%02d\",\"version\":1,"
                      "\"variants\":[{\"key\":\"control\",\"value\":false,\"weight\":50},"
                      "{\"key\":\"treatment\",\"value\":true,\"weight\":50}],"
                      "\"rules\":[{\"conditions\":[{\"attribute\":\"device\",\"operator\":\"in\","
                      "\"values\":[\"tablet\"]}],\"variant\":\"treatment\"}]}",
                      i ? "," : "", i, kind, i);
    }
    pe_buf_puts(&b, "]}");
    pe_flag_set_t *s = b.data ? pe_flags_set_from_json(b.data, b.len) : NULL;
    pe_buf_free(&b);
    return s;
}

/* CPU time of this thread, in µs: on a shared machine wall time also counts other processes. */
static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Returns wall ns/eval; *cpu_ns gets CPU ns/eval. */
static double run(const pe_flag_set_t *set, const pe_flag_t *flag, long n, char (*keys)[48],
                  long nkeys, unsigned long *checksum, double *cpu_ns)
{
    pe_flag_context_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.device = "mobile";
    int64_t t0 = pe_now_mono_us(), c0 = cpu_us();
    for (long i = 0; i < n; i++) {
        pe_flag_eval_t e;
        ctx.targeting_key = keys[i % nkeys];
        pe_flags_evaluate(set, flag, &ctx, &e);
        *checksum += (unsigned long)e.variant;
    }
    *cpu_ns = (double)(cpu_us() - c0) * 1000.0 / (double)n;
    return (double)(pe_now_mono_us() - t0) * 1000.0 / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
    if (n < 1000000)
        n = 1000000;
    if (pe_crypto_init() != 0)
        return 1;
    pe_flag_set_t *set = build_set();
    if (!set) {
        fprintf(stderr, "flags_micro: cannot build the flag set\n");
        return 1;
    }
    long nkeys = 1000000;
    char(*keys)[48] = malloc((size_t)nkeys * sizeof *keys);
    if (!keys)
        return 1;
    for (long i = 0; i < nkeys; i++) /* uuid-shaped visitor ids */
        snprintf(keys[i], sizeof keys[i], "%08lx-4e1c-4a2b-9f3d-%012lx",
                 (unsigned long)(i * 2654435761u) & 0xffffffffUL,
                 (unsigned long)i & 0xffffffffffffUL);
    unsigned long checksum = 0;
    double cpu = 0, cpu_auto = 0;
    run(set, pe_flags_set_find(set, "flag-00"), 100000, keys, nkeys, &checksum, &cpu); /* warm */
    double ns = run(set, pe_flags_set_find(set, "flag-00"), n, keys, nkeys, &checksum, &cpu);
    double ns_auto =
        run(set, pe_flags_set_find(set, "flag-01"), n, keys, nkeys, &checksum, &cpu_auto);
    printf("{\"evaluations\":%ld,\"ns_per_eval\":%.1f,\"cpu_ns_per_eval\":%.1f,"
           "\"autopilot_ns_per_eval\":%.1f,\"autopilot_cpu_ns_per_eval\":%.1f,"
           "\"checksum\":%lu}\n",
           n, ns, cpu, ns_auto, cpu_auto, checksum);
    free(keys);
    pe_flags_set_release(set);
    return 0;
}
