/*
 * cli.c — `profit-engine stats analyze` and `profit-engine stats sample-size`: the only file of
 * src/stats that does I/O (standard input and output); everything it computes comes from the
 * pure library beside it.
 *
 * Invariants:
 *  1. Exit status 0 with one JSON object and a newline on stdout; 2 for bad input or bad
 *     options, with {"error":{"code":…,"message":…}} on stdout (the JSON channel the caller
 *     reads); 1 when the computation itself failed (an "internal" error object).
 *  2. Standard input is bounded (STDIN_MAX) and read whole before parsing; nothing but the
 *     answer is ever written to stdout.
 *  3. Needs no configuration, database or network.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_internal.h"

#define EXIT_USAGE 2
#define STDIN_MAX  (1u << 20)

const char pe_stats_usage[] =
    "usage: profit-engine stats analyze < input.json\n"
    "       profit-engine stats sample-size --baseline B --mde M [--metric proportion|mean]\n"
    "                 [--variance V] [--alpha A] [--power P] [--sides two|greater|less]\n"
    "                 [--units N]\n"
    "analyze reads one experiment's sufficient statistics per arm as JSON on standard input\n"
    "and prints the analysis as JSON (effect, interval, p-value or chance to win and risk,\n"
    "SRM, CUPED, power; with a \"plan\" also the decision). Input and output: README,\n"
    "\"Statistics\". Bad input exits 2 with {\"error\":{\"code\":…,\"message\":…}}.\n"
    "sample-size prints the units per arm (equal split) a z-test needs to detect a relative\n"
    "change M of the baseline B (a rate, or a mean with per-unit variance V) at level A\n"
    "(0.05) with power P (0.8); with --units N also the MDE and the power at N per arm.\n"
    "Neither needs the database or any PE_* variable.\n";

/* Prints {"error":…} for err and returns status. */
static int fail(int status, const pe_refusal_t *err)
{
    pe_buf_t b = PE_BUF_INIT;
    if (pe_refusal_json(err, &b) == 0)
        printf("%s\n", b.data);
    pe_buf_free(&b);
    return status;
}

static int usage(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports bad options on stderr and as an error object; returns EXIT_USAGE. */
static int usage(const char *code, const char *fmt, ...)
{
    pe_refusal_t err;
    va_list ap;
    va_start(ap, fmt);
    pe_vrefuse(&err, PE_EINVAL, code, fmt, ap);
    va_end(ap);
    fprintf(stderr, "profit-engine: stats: %s\n", err.message);
    return fail(EXIT_USAGE, &err);
}

static int cmd_analyze(void)
{
    pe_buf_t in = PE_BUF_INIT, out = PE_BUF_INIT;
    pe_refusal_t err = {"internal", "statistics: out of memory"};
    int status = EXIT_FAILURE;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (in.len + n > STDIN_MAX) {
            pe_refuse(&err, PE_ETOOBIG, "too_large", "input: larger than %u bytes", STDIN_MAX);
            status = fail(EXIT_USAGE, &err);
            goto out;
        }
        if (pe_buf_append(&in, chunk, n) != 0)
            goto fail;
    }
    if (ferror(stdin)) {
        pe_refuse(&err, PE_EIO, "internal", "input: cannot read standard input");
        goto fail;
    }
    pe_stats_input_t input;
    pe_stats_plan_t plan;
    pe_stats_result_t result;
    pe_stats_decision_t decision;
    bool has_plan = false;
    double runtime = 0;
    int rc = pe_stats_input_parse(in.data, in.len, &input, &plan, &has_plan, &runtime, &err);
    rc = rc ? rc : pe_stats_analyze(&input, &result, &err);
    if (rc == 0 && has_plan)
        rc = pe_stats_decide(&input, &plan, runtime, &decision, &err);
    if (rc == PE_EINVAL) {
        status = fail(EXIT_USAGE, &err);
        goto out;
    }
    if (rc != 0)
        goto fail;
    if (pe_stats_result_json(&result, has_plan ? &decision : NULL, &out) != 0)
        goto fail;
    printf("%s\n", out.data);
    status = 0;
    goto out;
fail:
    status = fail(EXIT_FAILURE, &err);
out:
    pe_buf_free(&in);
    pe_buf_free(&out);
    return status;
}

/* Strict number: the whole argument, finite. */
static bool parse_number(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !stats_finite(x))
        return false;
    *out = x;
    return true;
}

static int cmd_sample_size(int argc, char **argv)
{
    pe_stats_sample_size_input_t in = {
        .metric = PE_STATS_PROPORTION,
        .baseline = NAN,
        .variance = NAN,
        .mde = NAN,
        .alpha = PE_STATS_DEFAULT_ALPHA,
        .power = PE_STATS_DEFAULT_POWER,
        .sides = PE_STATS_TWO_SIDED,
    };
    double units = NAN;
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc)
            return usage("invalid_option", "%s: needs a value", opt);
        const char *val = argv[++i];
        double *target = strcmp(opt, "--baseline") == 0   ? &in.baseline
                         : strcmp(opt, "--variance") == 0 ? &in.variance
                         : strcmp(opt, "--mde") == 0      ? &in.mde
                         : strcmp(opt, "--alpha") == 0    ? &in.alpha
                         : strcmp(opt, "--power") == 0    ? &in.power
                         : strcmp(opt, "--units") == 0    ? &units
                                                          : NULL;
        if (target) {
            if (!parse_number(val, target))
                return usage("invalid_type", "%s: must be a finite number", opt);
        } else if (strcmp(opt, "--metric") == 0) {
            if (strcmp(val, "proportion") != 0 && strcmp(val, "mean") != 0)
                return usage("out_of_range", "%s: must be proportion or mean", opt);
            in.metric = strcmp(val, "mean") == 0 ? PE_STATS_MEAN : PE_STATS_PROPORTION;
        } else if (strcmp(opt, "--sides") == 0) {
            if (strcmp(val, "two") != 0 && strcmp(val, "greater") != 0 && strcmp(val, "less") != 0)
                return usage("out_of_range", "%s: must be two, greater or less", opt);
            in.sides = strcmp(val, "two") == 0       ? PE_STATS_TWO_SIDED
                       : strcmp(val, "greater") == 0 ? PE_STATS_GREATER
                                                     : PE_STATS_LESS;
        } else {
            return usage("unknown_option", "%s: unknown option", opt);
        }
    }
    if (isnan(in.baseline))
        return usage("missing_field", "%s: required", "--baseline");
    if (isnan(in.mde))
        return usage("missing_field", "%s: required", "--mde");
    if (in.metric == PE_STATS_MEAN && isnan(in.variance))
        return usage("missing_field", "%s: required for a mean metric", "--variance");
    if (!isnan(units) && !(units >= 2 && units <= PE_STATS_MAX_UNITS && floor(units) == units))
        return usage("out_of_range", "%s: must be an integer ≥ 2", "--units");

    pe_stats_sample_size_t ss;
    pe_refusal_t err = {"internal", "statistics: a numerical routine failed"};
    int rc = pe_stats_sample_size(&in, &ss, &err);
    if (rc != 0)
        return fail(rc == PE_EINVAL ? EXIT_USAGE : EXIT_FAILURE, &err);
    double mde_rel = NAN, achieved = NAN;
    if (!isnan(units)) {
        double se = sqrt((ss.var_control + ss.var_variant) / units), mde;
        rc = pe_stats_mde(se, in.alpha, in.power, in.sides, &mde);
        rc = rc ? rc : pe_stats_power(ss.delta, se, in.alpha, in.sides, &achieved);
        if (rc != 0)
            return fail(EXIT_FAILURE, &err);
        mde_rel = mde / fabs(in.baseline);
    }
    pe_buf_t b = PE_BUF_INIT;
    rc = pe_buf_printf(&b, "{\"unitsPerArm\":%.0f,\"totalUnits\":%.0f,\"unitsPerArmExact\":",
                       ss.units_per_arm_ceil, 2 * ss.units_per_arm_ceil);
    rc = rc ? rc : pe_stats_json_number(&b, ss.units_per_arm);
    rc = rc ? rc : pe_buf_puts(&b, ",\"effect\":");
    rc = rc ? rc : pe_stats_json_number(&b, ss.delta);
    rc = rc ? rc : pe_buf_puts(&b, ",\"mdeRelative\":");
    rc = rc ? rc : pe_stats_json_number(&b, mde_rel);
    rc = rc ? rc : pe_buf_puts(&b, ",\"achievedPower\":");
    rc = rc ? rc : pe_stats_json_number(&b, achieved);
    rc = rc ? rc : pe_buf_puts(&b, "}");
    if (rc == 0)
        printf("%s\n", b.data);
    pe_buf_free(&b);
    return rc == 0 ? 0 : EXIT_FAILURE;
}

int pe_stats_command(int argc, char **argv)
{
    pe_stats_init();
    if (argc >= 1 && strcmp(argv[0], "analyze") == 0) {
        if (argc > 1)
            return usage("invalid_option", "analyze: unexpected argument '%s'", argv[1]);
        return cmd_analyze();
    }
    if (argc >= 1 && strcmp(argv[0], "sample-size") == 0)
        return cmd_sample_size(argc - 1, argv + 1);
    return usage("invalid_option", "expected 'analyze' or 'sample-size', not '%s'",
                 argc ? argv[0] : "");
}
