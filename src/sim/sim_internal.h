/*
 * sim_internal.h — what the simulator's files share: the fixed dimensions of simulated traffic
 * (steps, devices, countries, traffic sources, payment and shipping methods) and the parsed
 * scenario that scenario.c builds and generate.c reads.
 */
#ifndef PE_SIM_INTERNAL_H
#define PE_SIM_INTERNAL_H

#include "pe/sim.h"

/* Funnel steps in order; index i is pe_funnel_step_t (i + 1). */
#define SIM_NSTEPS 5
extern const char *const sim_step_names[SIM_NSTEPS];

#define SIM_NDEVICES 4
extern const char *const sim_device_names[SIM_NDEVICES]; /* the event model's device types */

#define SIM_NCOUNTRIES 10
extern const char *const sim_country_codes[SIM_NCOUNTRIES];
extern const char *const sim_country_locales[SIM_NCOUNTRIES];

/* Traffic sources: a channel and the UTM it arrives with (source is unique per channel). */
#define SIM_NSOURCES 6
typedef struct {
    const char *name;         /* channel: direct, organic, paid, social, email, referral */
    const char *utm_source;   /* NULL for direct */
    const char *utm_medium;   /* NULL for direct */
    const char *campaigns[2]; /* NULL-padded; none for direct, organic, referral */
    const char *referrer;     /* "" for direct */
} sim_source_t;
extern const sim_source_t sim_sources[SIM_NSOURCES];

#define SIM_NPAYMENTS 4
extern const char *const sim_payment_names[SIM_NPAYMENTS];

#define SIM_VISITOR_ANY       -1
#define SIM_VISITOR_NEW       0
#define SIM_VISITOR_RETURNING 1

/* One override: which sessions it touches and what it changes. */
typedef struct {
    /* segment: -1 / NULL = any */
    int device, country, source, visitor;
    char *utm_source, *utm_medium, *utm_campaign;
    /* effects */
    int step;               /* 0..SIM_NSTEPS-1, or -1 */
    double drop_multiplier; /* < 0: not set */
    double probability;     /* < 0: not set */
    bool has_payments;
    double payments[SIM_NPAYMENTS]; /* < 0: unchanged */
    /* when: store-local days since 1970-01-01, both included; an absent bound is open-ended
     * (has_from / has_to false, the day then unused). from ≤ to when both are given. */
    bool has_from, has_to;
    int32_t from, to;
} sim_override_t;

struct pe_sim_scenario {
    char *description; /* may be NULL */
    double funnel[SIM_NSTEPS];
    double payments[SIM_NPAYMENTS];
    double devices[SIM_NDEVICES];
    double countries[SIM_NCOUNTRIES];
    double sources[SIM_NSOURCES];
    double returning_share;
    unsigned products;
    sim_override_t *overrides;
    size_t noverrides;
};

/* What a session is, for matching overrides. */
typedef struct {
    int device, country, source, visitor;
    const char *campaign; /* NULL when none */
    int32_t day;          /* the session's store-local day, days since 1970-01-01 */
} sim_segment_key_t;

bool sim_override_matches(const sim_override_t *o, const sim_segment_key_t *k);

#endif /* PE_SIM_INTERNAL_H */
