/*
 * pe/sim.h — simulated stores with known truth: a deterministic generator of storefront traffic
 * (catalogue, visitors, sessions, funnels, orders), the scenario that shapes it, the realised
 * truth it writes out, and the `profit-engine simulate` command that delivers the events through
 * the real collector (over HTTP, or in-process).
 *
 * Invariants:
 *  1. Deterministic: the same seed, store time zone, days, sessions per day, end date and
 *     scenario produce byte-identical events (eventIds included) and truth, whatever the number
 *     of worker threads and whatever the delivery path. Every random draw comes from the
 *     xoshiro256** generator below, seeded through splitmix64; never rand().
 *  2. Independent streams: each day and each session draws from its own stream, derived from
 *     (seed, day, session), so a session's events depend on nothing rendered before them.
 *  3. Every generated event is valid for pe_events_validate, and no session crosses a
 *     store-local midnight (every definition of "the session's day" agrees).
 *  4. The truth counts exactly what is emitted: sessions dropped by the cut-off (ending after
 *     "now") are counted nowhere.
 *  5. The scenario parser takes untrusted input: bounded, strict (unknown keys refused), and
 *     every refusal names the field ("overrides[1].step: must be one of cart, …").
 */
#ifndef PE_SIM_H
#define PE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"

/* ---- pseudo-random numbers (thread-compatible: one generator per thread) --------------------- */

typedef struct {
    uint64_t s[4];
} pe_sim_rng_t;

/* splitmix64's finaliser: a bijective mix of 64 bits. Pure. */
uint64_t pe_sim_mix64(uint64_t x);
/* Seeds r from seed through splitmix64 (never an all-zero state). */
void pe_sim_rng_seed(pe_sim_rng_t *r, uint64_t seed);
/* Seeds r for the stream (seed, a, b): distinct coordinates give unrelated streams. */
void pe_sim_rng_stream(pe_sim_rng_t *r, uint64_t seed, uint64_t a, uint64_t b);
/* xoshiro256**: the next 64 random bits. */
uint64_t pe_sim_rng_next(pe_sim_rng_t *r);
/* Uniform in [0, 1) with 53 random bits. */
double pe_sim_rng_uniform(pe_sim_rng_t *r);
/* Uniform integer in [0, n) without modulo bias; 0 when n is 0. */
uint64_t pe_sim_rng_below(pe_sim_rng_t *r, uint64_t n);
/* True with probability p (p ≤ 0 never, p ≥ 1 always). */
bool pe_sim_rng_bernoulli(pe_sim_rng_t *r, double p);
/* Standard normal (Box–Muller; one uniform pair per call, so the stream stays simple). */
double pe_sim_rng_normal(pe_sim_rng_t *r);
/* Poisson with mean lambda (0 ≤ lambda ≤ 30; Knuth's product method), capped at cap. */
unsigned pe_sim_rng_poisson(pe_sim_rng_t *r, double lambda, unsigned cap);
/* An index in [0, n) drawn with probability weights[i] / sum (weights ≥ 0, sum > 0); draws
 * exactly one uniform. Returns n - 1 for a degenerate sum. */
size_t pe_sim_rng_pick(pe_sim_rng_t *r, const double *weights, size_t n);
/* A UUID (version 4 layout, lower-case text) derived from (seed, a, b): the same coordinates
 * always give the same id. out needs 37 bytes. */
void pe_sim_uuid(uint64_t seed, uint64_t a, uint64_t b, char out[37]);

/* ---- scenario ------------------------------------------------------------------------------- */

/* A parsed, validated scenario (see README "Simulated traffic" for the format). Immutable after
 * parsing; thread-safe to read. */
typedef struct pe_sim_scenario pe_sim_scenario_t;

#define PE_SIM_SCENARIO_MAX_BYTES     (1024 * 1024)
#define PE_SIM_SCENARIO_MAX_OVERRIDES 256

/* Parses a scenario document (len bytes; NULL/0 = the defaults). An override may be limited to
 * store-local days with "from" / "to" (YYYY-MM-DD, both included, either open-ended); the
 * generator matches them against each session's local day. Returns 0 and *out (free with
 * pe_sim_scenario_free), or PE_EINVAL with a message naming the field in err, or PE_ENOMEM.
 * Thread-safe. */
int pe_sim_scenario_parse(const char *text, size_t len, pe_sim_scenario_t **out, char *err,
                          size_t errlen);
void pe_sim_scenario_free(pe_sim_scenario_t *s);
/* The scenario in force (every default filled in) as a new JSON object; NULL on ENOMEM. Parsing
 * its serialisation gives back the same scenario. */
cJSON *pe_sim_scenario_json(const pe_sim_scenario_t *s);

/* ---- generator ------------------------------------------------------------------------------ */

typedef struct pe_sim pe_sim_t;

typedef struct {
    uint64_t seed;
    unsigned days;             /* 1..PE_SIM_MAX_DAYS */
    unsigned sessions_per_day; /* mean, 1..PE_SIM_MAX_SESSIONS_PER_DAY */
    /* days + 1 instants (Unix µs): the store-local midnights that start each day, and the one
     * that ends the last. Copied. */
    const int64_t *day_starts_us;
    const char *first_day; /* "YYYY-MM-DD", the local date of day 0 */
    const char *currency;  /* ISO 4217 of every amount */
    const char *host;      /* storefront host for page URLs ("shop.example"), NULL = default */
    int64_t cutoff_us;     /* sessions ending after this instant are not emitted; 0 = none */
    const pe_sim_scenario_t *scenario; /* borrowed; must outlive the generator */
} pe_sim_params_t;

#define PE_SIM_MAX_DAYS             400
#define PE_SIM_MAX_SESSIONS_PER_DAY 1000000

/* Where rendered events go: called from worker threads (worker = 0..threads-1) with a JSON
 * array of 1..500 events (borrowed: the caller deletes it afterwards). Returns 0, or a PE_E…
 * code that stops the run. */
typedef int (*pe_sim_deliver_fn)(void *ctx, unsigned worker, const cJSON *events, size_t count);

/* Builds a generator and its catalogue. Returns NULL with a reason in err (bad parameters) or
 * on ENOMEM. */
pe_sim_t *pe_sim_new(const pe_sim_params_t *p, char *err, size_t errlen);
void pe_sim_free(pe_sim_t *sim);
/* The catalogue as a products array for pe_catalog_upsert (new; caller deletes). */
cJSON *pe_sim_catalog_json(const pe_sim_t *sim);
/* Generates every day in order and hands the events to deliver from `threads` workers (1..64).
 * Returns 0, or the first non-zero code of deliver (the run stops early), or PE_ENOMEM. Call
 * once per generator. */
int pe_sim_run(pe_sim_t *sim, unsigned threads, pe_sim_deliver_fn deliver, void *ctx);
/* The realised truth of a finished run (plus the scenario in force) as a new JSON object; see
 * README "Simulated traffic" for its shape. NULL on ENOMEM. */
cJSON *pe_sim_truth_json(const pe_sim_t *sim);

typedef struct {
    uint64_t sessions, events, orders, revenue_cents;
} pe_sim_totals_t;
void pe_sim_totals(const pe_sim_t *sim, pe_sim_totals_t *out);

/* ---- the command ---------------------------------------------------------------------------- */

extern const char pe_sim_usage[];
/* `profit-engine simulate …` (argv after the command name). cfg supplies PE_DATABASE_URL and
 * PE_LISTEN. Returns the exit status: 0, 1 (failed), 2 (bad usage, scenario or store). */
int pe_sim_command(const pe_config_t *cfg, int argc, char **argv);

#endif /* PE_SIM_H */
