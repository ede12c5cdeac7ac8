/*
 * sim_internal.h — what the simulator's files share: the fixed dimensions of simulated traffic
 * (steps, devices, countries, traffic sources, payment and shipping methods) and the parsed
 * scenario that scenario.c builds and generate.c reads.
 */
#ifndef PE_SIM_INTERNAL_H
#define PE_SIM_INTERNAL_H

#include "pe/db.h"
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

/* One product the simulated store sells: generated (SKUs SIM-0001…) or the scenario's "catalog". */
#define SIM_SKU_MAX      64  /* bytes; letters, digits and - . _ ~ (the SKU is a URL segment) */
#define SIM_LABEL_MAX    128 /* bytes of UTF-8, no control characters: name, category */
#define SIM_PRODUCTS_MAX 1000
typedef struct {
    char sku[SIM_SKU_MAX + 1];
    char name[SIM_LABEL_MAX + 1];
    char category[SIM_LABEL_MAX + 1];
    int64_t price_cents, cost_cents;
    int stock;         /* -1: not tracked */
    double popularity; /* relative weight of being viewed, ≥ 0 */
} sim_product_t;

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

/* One entry of the scenario's "effects": the true effect of the ChangeSets it targets on the
 * units of their treatment (the closed-loop simulation, autopilot.c). */
typedef enum {
    SIM_TARGET_ANY = 0,     /* "*" */
    SIM_TARGET_STEP,        /* "step:<step>": the funnel step the ChangeSet acts on */
    SIM_TARGET_CHANGE_TYPE, /* "changeType:<ChangeDetail.type>" */
    SIM_TARGET_PLAYBOOK,    /* "playbook:<id>" */
    SIM_TARGET_FLAG,        /* "flag:<key>" */
} sim_target_kind_t;

#define SIM_MAX_EFFECTS 64

typedef struct {
    sim_target_kind_t kind;
    char *target;      /* as written ("step:shipping"; owned) */
    const char *value; /* into target, after the colon ("" for "*") */
    bool has_segment;  /* segment: only the segment fields of an override are used */
    sim_override_t segment;
    double drop_multiplier;       /* of the ChangeSet's step's drop-off; 1 = unchanged */
    double conversion_multiplier; /* 1 = unchanged */
    double price_multiplier;      /* 1 = unchanged */
} sim_effect_rule_t;

struct pe_sim_scenario {
    char *description; /* may be NULL */
    double funnel[SIM_NSTEPS];
    double payments[SIM_NPAYMENTS];
    double devices[SIM_NDEVICES];
    double countries[SIM_NCOUNTRIES];
    double sources[SIM_NSOURCES];
    double returning_share;
    unsigned products;      /* how many; generated unless catalog is given */
    sim_product_t *catalog; /* the scenario's own products (products of them), or NULL */
    sim_override_t *overrides;
    size_t noverrides;
    sim_effect_rule_t *effects;
    size_t neffects;
};

/* What a session is, for matching overrides. */
typedef struct {
    int device, country, source, visitor;
    const char *campaign; /* NULL when none */
    int32_t day;          /* the session's store-local day, days since 1970-01-01 */
} sim_segment_key_t;

bool sim_override_matches(const sim_override_t *o, const sim_segment_key_t *k);

/* ---- the closed loop's hooks into the generator (autopilot.c) ------------------------------ */

/* One session's unit as the storefront would evaluate flags for it. */
typedef struct {
    const sim_segment_key_t *key; /* device, country, source, visitor type, campaign, day */
    unsigned day;                 /* index of the simulated day */
    char unit[40];                /* the visitor's anonymousId (the experiment unit) */
    char session_id[40];
} sim_unit_t;

/* What one treatment does to a session (all 1 = nothing). */
typedef struct {
    double drop[SIM_NSTEPS]; /* multiplier of each step's drop-off */
    double conversion;       /* multiplier of the chance to complete the order ... */
    int conversion_step;     /* ... taken at this step first (where the change acts; later
                                steps take what it cannot), -1: from the earliest step */
    double price;            /* multiplier of the prices paid (costs unchanged) */
} sim_effect_t;

/* The treatments one session gets (one per experiment whose treatment it is in); they compose
 * by multiplying. */
#define SIM_MAX_TREATMENTS 8
typedef struct {
    size_t n;
    sim_effect_t effect[SIM_MAX_TREATMENTS];
} sim_treatment_t;

/* What a session came to. */
typedef struct {
    unsigned reached;      /* funnel steps reached, 0..SIM_NSTEPS */
    unsigned orders;       /* 0 or 1 */
    int64_t revenue_cents; /* the order's value (items + shipping) */
    int64_t cost_cents;    /* its cost of goods */
} sim_outcome_t;

typedef struct {
    /* Called by the planning thread for every session, in order, before its journey is drawn;
     * t starts empty. */
    void (*treat)(void *ctx, const sim_unit_t *unit, sim_treatment_t *t);
    /* Called for every emitted session after its journey, with its start, its outcome and, for
     * each treatment i of treat's t, without[i]: the outcome the same draws give with every
     * treatment but that one (its counterfactual; the realised effect of treatment i on this
     * session is actual − without[i]), and baseline: the outcome with no treatment at all (=
     * actual for an untreated session; what the session would have been without Autopilot). */
    void (*observe)(void *ctx, const sim_unit_t *unit, int64_t start_us,
                    const sim_outcome_t *actual, const sim_outcome_t *without,
                    const sim_outcome_t *baseline);
    void *ctx;
} sim_hooks_t;

/* Installs hooks (copied) before the first day is generated. */
void sim_set_hooks(pe_sim_t *sim, const sim_hooks_t *hooks);
/* Generates days [first, first + count) — first must be the next day not generated — and
 * delivers them as pe_sim_run does; returns when they are delivered. pe_sim_run is this over
 * every day. Returns 0, PE_EINVAL (out of order) or the first failure. */
int sim_run_days(pe_sim_t *sim, unsigned first, unsigned count, unsigned threads,
                 pe_sim_deliver_fn deliver, void *ctx);

/* ---- the closed loop (autopilot.c) --------------------------------------------------------- */

typedef enum { SIM_APPROVE_NONE = 0, SIM_APPROVE_TOP, SIM_APPROVE_ALL } sim_approve_t;

typedef struct {
    pe_db_pool_t *pool;
    const char *store_id;
    const char *redis_url;             /* NULL: flag changes reach servers at their next poll */
    const pe_sim_scenario_t *scenario; /* its effects */
    sim_approve_t approve;             /* the merchant's policy */
    unsigned days, workers;
    const int64_t *day_starts; /* days + 1 local midnights, Unix µs */
    int32_t first_day;         /* day 0, store-local, days since 1970-01-01 */
    int64_t real_now_us;       /* the jobs never run later than this (the unfinished day) */
    pe_sim_deliver_fn deliver; /* events and exposures go here */
    void *deliver_ctx;
} sim_autopilot_params_t;

/* Where a closed loop's time goes, stage by stage. */
typedef enum {
    SIM_STAGE_TRAFFIC = 0, /* generating and storing the day's events and exposures */
    SIM_STAGE_AGGREGATE,
    SIM_STAGE_DIAGNOSE,
    SIM_STAGE_RECOMMEND, /* with the approval expiry before it and the approval policy */
    SIM_STAGE_MEASURE,
    SIM_LOOP_STAGES
} sim_loop_stage_t;

typedef struct {
    size_t experiments, approved, proven, rolled_back, running;
    double seconds[SIM_LOOP_STAGES];
} sim_autopilot_totals_t;

/* Plays every day of sim through the real engine (autopilot.c's header). Returns the exit
 * status: 0 with *out = {"approve","approved","blocked","experiments":[…]} (the truth's
 * "autopilot"; caller deletes), or 1 with the reason on stderr. */
int sim_autopilot_run(const sim_autopilot_params_t *p, pe_sim_t *sim, cJSON **out,
                      sim_autopilot_totals_t *totals);

#endif /* PE_SIM_INTERNAL_H */
