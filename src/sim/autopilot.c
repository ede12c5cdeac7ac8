/*
 * autopilot.c — `profit-engine simulate … --autopilot`: the closed loop. A store is played day
 * by day through the real engine, and every decision it makes is recorded beside the truth it
 * should have found.
 *
 *   for each simulated day d:
 *     the store's live flags ──▶ each session's unit is bucketed by pe_flags_evaluate, as OFREP
 *       would (exposures recorded as the SDK records them); a treatment's true effect comes
 *       from the scenario's "effects" (the first entry matching its ChangeSet and the unit)
 *     the generator draws the day (sim_run_days), treated sessions with their counterfactual
 *     ──▶ collector (import mode) ──▶ at the day's end, at that day's time:
 *     aggregate ▸ diagnose ▸ approval expiry ▸ recommend ▸ the approval policy (the merchant)
 *     ▸ measure (approval expiry: serve's changeset_expiry job, for this store only, so a
 *     ChangeSet left waiting past PE_APPROVAL_TIMEOUT_HOURS is archived and its recommendation
 *     issued afresh, as on a live store)
 *
 * Time: the ChangeSet service's clock (pe_changeset_config_t.clock) and every job's now_us are
 * the simulated instant — the end of day d plus JOB_DELAY_US, or the real now when that is
 * later than it (the last, unfinished day). Nothing here reads the wall clock for a decision;
 * `serve` never takes this clock.
 *
 * Truth: for every ChangeSet that served a treatment, the sums over its treated sessions of
 * orders, revenue and gross profit (revenue − cost of goods) as they happened and as the same
 * draws give without that ChangeSet's treatment (the generator's counterfactual). Their
 * ratios are its realised true relative effects; their differences its realised uplift.
 *
 * Invariants:
 *  1. Only --via direct delivery (the collector in import mode): exposures are timestamped at
 *     their session's start, days in the past.
 *  2. The same seed, scenario, days and store state give the same decisions: bucketing is
 *     pe_flags_evaluate's hash of the unit, every draw the generator's; the jobs run in a fixed
 *     order at fixed simulated times.
 *  3. A job that fails stops the run (exit 1) naming the job and the day (an aggregate,
 *     diagnose, recommend or measure run that times out is tried again, JOB_ATTEMPTS in all, as
 *     serve's next period would); a recommendation the guardrails block is not a failure (the
 *     policy skips it, as a merchant would have to).
 *  4. Run it against a store that no `serve` instance judges meanwhile: a server's measure,
 *     diagnose, recommend and expiry jobs would act on it at the real time, not the simulated
 *     one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/aggregate.h"
#include "pe/changeset.h"
#include "pe/doctor.h"
#include "pe/experiments.h"
#include "pe/flags.h"
#include "pe/redis.h"
#include "sim_internal.h"

#define JOB_DELAY_US    (5 * 60 * 1000000LL) /* the jobs run five minutes after midnight */
#define MAX_EXPERIMENTS 512
#define DB_TIMEOUT_MS   10000
#define EXPOSURE_BATCH  PE_EVENT_BATCH_MAX_EVENTS
#define REDIS_TIMEOUT   2000
#define JOB_ATTEMPTS    3 /* a job run that times out is tried this often in all */

/* One exposure of the session being planned. */
typedef struct {
    const char *flag, *variant; /* borrowed from today's flag set */
    bool holdout;
} exposure_t;

/* One ChangeSet with a flag, and the truth of what its treatment did. */
typedef struct {
    char id[PE_CHANGESET_ID_LEN + 8];
    char flag[PE_FLAGS_KEY_MAX + 1];
    char playbook[64];
    char change_type[64];
    int step;                      /* index into sim_step_names, -1 unknown */
    const sim_effect_rule_t *rule; /* the first rule that applied to one of its units */
    bool rule_segmented;           /* some treated units matched no rule (a segment rule) */
    int first_day;                 /* the first day it served a treatment, -1 none */
    uint64_t treated, control;     /* sessions in its treatment, in its control */
    double orders, orders_without, revenue, revenue_without, profit, profit_without; /* cents */
} experiment_t;

/* The holdout's truth: every visitor exposed to an Autopilot flag so far (open addressing on
 * a 64-bit hash of the unit), and per group (store holdout, everyone else) what their
 * sessions from that exposure on came to as they happened and at baseline (no treatment). */
enum { U_HOLDOUT = 1, U_CONVERTED = 2, U_CONVERTED_BASE = 4 };
typedef struct {
    uint64_t key; /* 0 = empty */
    uint8_t state;
} unit_slot_t;

typedef struct {
    double units, converted[2], revenue[2], profit[2]; /* [as happened, at baseline]; cents */
} group_truth_t;

typedef struct {
    /* borrowed from the command */
    const sim_autopilot_params_t *p;
    pe_sim_t *sim;
    /* the engine */
    pe_redis_t *redis;
    pe_flags_t *flags;
    pe_changeset_service_t *svc;
    pe_doctor_recommender_t *rec;
    int64_t now_us; /* the simulated clock */
    /* today's flags and experiments */
    pe_flag_set_t *set;
    experiment_t *exps;
    size_t nexps;
    cJSON *sources[SIM_NSOURCES], *campaigns[SIM_NSOURCES][2];
    /* the session being planned */
    size_t ntreated, treated[SIM_MAX_TREATMENTS];
    size_t ncontrol, control[MAX_EXPERIMENTS];
    size_t nexposed;
    exposure_t exposed[PE_FLAGS_MAX_PER_STORE];
    /* exposures waiting for delivery */
    cJSON *batch;
    size_t batched;
    int error;
    /* the holdout's truth */
    unit_slot_t *units;
    size_t nunits, units_cap;
    group_truth_t groups[2]; /* 0: the store holdout, 1: exposed */
    /* decisions */
    size_t approved, blocked;
    double seconds[SIM_LOOP_STAGES]; /* where the time went (the summary line) */
} loop_t;

static int64_t sim_clock(void *arg)
{
    return ((const loop_t *)arg)->now_us;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "profit-engine: simulate --autopilot: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 1;
}

/* ---- the storefront: bucketing and exposures ---------------------------------------------- */

/* The source dimension as the aggregation derives it (utm_source, else the referrer's host,
 * else direct) and the SDK sends it. */
static void source_value(const sim_source_t *src, char *out, size_t outlen)
{
    const char *host = src->referrer;
    if (src->utm_source) {
        snprintf(out, outlen, "%s", src->utm_source);
        return;
    }
    if (!host[0]) {
        snprintf(out, outlen, "direct");
        return;
    }
    host = strstr(host, "//") ? strstr(host, "//") + 2 : host;
    if (strncmp(host, "www.", 4) == 0)
        host += 4;
    size_t n = strcspn(host, "/:?#");
    snprintf(out, outlen, "%.*s", (int)n, host);
}

static bool rule_targets(const sim_effect_rule_t *r, const experiment_t *e)
{
    switch (r->kind) {
    case SIM_TARGET_ANY:
        return true;
    case SIM_TARGET_STEP:
        return e->step >= 0 && strcmp(sim_step_names[e->step], r->value) == 0;
    case SIM_TARGET_CHANGE_TYPE:
        return strcmp(e->change_type, r->value) == 0;
    case SIM_TARGET_PLAYBOOK:
        return strcmp(e->playbook, r->value) == 0;
    case SIM_TARGET_FLAG:
        return strcmp(e->flag, r->value) == 0;
    }
    return false;
}

static const sim_effect_rule_t *rule_for(const pe_sim_scenario_t *sc, const experiment_t *e,
                                         const sim_segment_key_t *key)
{
    for (size_t i = 0; i < sc->neffects; i++) {
        const sim_effect_rule_t *r = &sc->effects[i];
        if (rule_targets(r, e) && (!r->has_segment || sim_override_matches(&r->segment, key)))
            return r;
    }
    return NULL;
}

static experiment_t *experiment_of(loop_t *L, const char *flag)
{
    for (size_t i = 0; i < L->nexps; i++)
        if (strcmp(L->exps[i].flag, flag) == 0)
            return &L->exps[i];
    return NULL;
}

static void treat(void *arg, const sim_unit_t *u, sim_treatment_t *t)
{
    loop_t *L = arg;
    const sim_segment_key_t *k = u->key;
    L->ntreated = L->ncontrol = L->nexposed = 0;
    if (!L->set)
        return;
    pe_flag_context_t ctx = {
        .targeting_key = u->unit,
        .device = sim_device_names[k->device],
        .country = sim_country_codes[k->country],
        .customer = k->visitor == SIM_VISITOR_NEW ? "new" : "returning",
        .session_id = u->session_id,
    };
    ctx.custom_names[ctx.ncustom] = "source";
    ctx.custom_values[ctx.ncustom++] = L->sources[k->source];
    const sim_source_t *src = &sim_sources[k->source];
    for (int c = 0; c < 2 && k->campaign; c++)
        if (src->campaigns[c] && strcmp(src->campaigns[c], k->campaign) == 0) {
            ctx.custom_names[ctx.ncustom] = "campaign";
            ctx.custom_values[ctx.ncustom++] = L->campaigns[k->source][c];
        }
    size_t n = pe_flags_set_count(L->set);
    for (size_t i = 0; i < n; i++) {
        const pe_flag_t *f = pe_flags_set_at(L->set, i);
        pe_flag_eval_t ev;
        pe_flags_evaluate(L->set, f, &ctx, &ev);
        if (ev.variant < 0)
            continue;
        const char *variant = pe_flags_variant_key(f, ev.variant);
        if (ev.exposure && L->nexposed < PE_ARRAY_LEN(L->exposed))
            L->exposed[L->nexposed++] = (exposure_t){pe_flags_key(f), variant, ev.holdout};
        experiment_t *e = experiment_of(L, pe_flags_key(f));
        if (!e || ev.holdout)
            continue;
        if (strcmp(variant, "control") == 0) {
            if (L->ncontrol < MAX_EXPERIMENTS)
                L->control[L->ncontrol++] = (size_t)(e - L->exps);
            continue;
        }
        if (t->n == SIM_MAX_TREATMENTS)
            continue;
        sim_effect_t *eff = &t->effect[t->n];
        for (int s = 0; s < SIM_NSTEPS; s++)
            eff->drop[s] = 1.0;
        eff->conversion = eff->price = 1.0;
        eff->conversion_step = e->step; /* a change acts where it is made */
        const sim_effect_rule_t *r = rule_for(L->p->scenario, e, k);
        if (r) {
            if (e->step >= 0)
                eff->drop[e->step] = r->drop_multiplier;
            eff->conversion = r->conversion_multiplier;
            eff->price = r->price_multiplier;
            if (!e->rule)
                e->rule = r;
            else if (e->rule != r)
                e->rule_segmented = true;
        } else if (e->rule) {
            e->rule_segmented = true;
        }
        L->treated[t->n++] = (size_t)(e - L->exps);
    }
    L->ntreated = t->n;
}

static int flush_exposures(loop_t *L)
{
    if (!L->batched)
        return 0;
    int rc = L->p->deliver(L->p->deliver_ctx, 0, L->batch, L->batched);
    cJSON_Delete(L->batch);
    L->batch = NULL;
    L->batched = 0;
    return rc;
}

static uint64_t unit_hash(const char *unit)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)unit; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ? h : 1;
}

/* The slot of unit; inserted (state 0) when `add`, else NULL when absent or out of memory. */
static unit_slot_t *unit_slot(loop_t *L, const char *unit, bool add)
{
    if (add && (L->nunits + 1) * 2 > L->units_cap) {
        size_t cap = L->units_cap ? L->units_cap * 2 : 4096;
        unit_slot_t *t = calloc(cap, sizeof *t);
        if (!t) {
            L->error = PE_ENOMEM;
            return NULL;
        }
        for (size_t i = 0; i < L->units_cap; i++)
            if (L->units[i].key)
                for (size_t j = L->units[i].key & (cap - 1);; j = (j + 1) & (cap - 1))
                    if (!t[j].key) {
                        t[j] = L->units[i];
                        break;
                    }
        free(L->units);
        L->units = t;
        L->units_cap = cap;
    }
    if (!L->units_cap)
        return NULL;
    uint64_t k = unit_hash(unit);
    for (size_t j = k & (L->units_cap - 1);; j = (j + 1) & (L->units_cap - 1)) {
        if (L->units[j].key == k)
            return &L->units[j];
        if (!L->units[j].key) {
            if (!add)
                return NULL;
            L->units[j].key = k;
            L->nunits++;
            return &L->units[j];
        }
    }
}

/* A session of a visitor exposed to an Autopilot flag, now or before: into its group's truth. */
static void holdout_truth(loop_t *L, const sim_unit_t *u, const sim_outcome_t *actual,
                          const sim_outcome_t *baseline)
{
    unit_slot_t *slot = unit_slot(L, u->unit, false);
    if (!slot && L->nexposed) {
        if (!(slot = unit_slot(L, u->unit, true)))
            return;
        for (size_t i = 0; i < L->nexposed; i++)
            if (L->exposed[i].holdout)
                slot->state |= U_HOLDOUT;
        L->groups[slot->state & U_HOLDOUT ? 0 : 1].units++;
    }
    if (!slot)
        return;
    group_truth_t *g = &L->groups[slot->state & U_HOLDOUT ? 0 : 1];
    const sim_outcome_t *o[2] = {actual, baseline};
    for (int k = 0; k < 2; k++) {
        uint8_t bit = k ? U_CONVERTED_BASE : U_CONVERTED;
        if (o[k]->orders && !(slot->state & bit)) {
            slot->state |= bit;
            g->converted[k]++;
        }
        g->revenue[k] += (double)o[k]->revenue_cents;
        g->profit[k] += (double)(o[k]->revenue_cents - o[k]->cost_cents);
    }
}

static void observe(void *arg, const sim_unit_t *u, int64_t start_us, const sim_outcome_t *actual,
                    const sim_outcome_t *without, const sim_outcome_t *baseline)
{
    loop_t *L = arg;
    holdout_truth(L, u, actual, baseline);
    for (size_t i = 0; i < L->nexposed && !L->error; i++) {
        if (!L->batch && !(L->batch = cJSON_CreateArray())) {
            L->error = PE_ENOMEM;
            break;
        }
        cJSON *ev =
            pe_flags_exposure_event(L->p->store_id, L->exposed[i].flag, L->exposed[i].variant,
                                    L->exposed[i].holdout, u->unit, u->session_id, start_us);
        if (!ev || !cJSON_AddItemToArray(L->batch, ev)) {
            cJSON_Delete(ev);
            L->error = PE_ENOMEM;
            break;
        }
        if (++L->batched == EXPOSURE_BATCH)
            L->error = flush_exposures(L);
    }
    for (size_t i = 0; i < L->ntreated; i++) {
        experiment_t *e = &L->exps[L->treated[i]];
        if (e->first_day < 0)
            e->first_day = (int)u->day;
        e->treated++;
        e->orders += actual->orders;
        e->orders_without += without[i].orders;
        e->revenue += (double)actual->revenue_cents;
        e->revenue_without += (double)without[i].revenue_cents;
        e->profit += (double)(actual->revenue_cents - actual->cost_cents);
        e->profit_without += (double)(without[i].revenue_cents - without[i].cost_cents);
    }
    for (size_t i = 0; i < L->ncontrol; i++)
        L->exps[L->control[i]].control++;
}

/* ---- the engine's side -------------------------------------------------------------------- */

/* Today's flag set and every ChangeSet with a flag (new ones appended; order kept). */
static int refresh(loop_t *L)
{
    static const char sql[] =
        "SELECT c.id, c.feature_flag_key, coalesce(r.playbook, ''), coalesce(r.doc->>'step', ''),"
        "       coalesce(c.action_plan->'implementation'->'changes'->0->>'type', '')"
        "  FROM changesets c"
        "  LEFT JOIN recommendations r ON r.store_id = c.store_id AND r.changeset_id = c.id"
        " WHERE c.store_id = $1::uuid AND c.feature_flag_key IS NOT NULL"
        "   AND c.status <> 'DRAFT' AND c.status <> 'PENDING_APPROVAL'"
        " ORDER BY c.created_at, c.id";
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    const char *params[] = {L->p->store_id};
    pe_flags_set_release(L->set);
    L->set = NULL;
    int rc = pe_flags_acquire(L->flags, L->p->store_id, &L->set);
    if (rc == 0)
        rc = pe_db_acquire(L->p->pool, DB_TIMEOUT_MS, &conn);
    if (rc == 0)
        rc = pe_db_exec(conn, sql, 1, params, &res);
    for (size_t i = 0; rc == 0 && i < pe_db_result_rows(res); i++) {
        const char *flag = pe_db_result_get(res, i, 1);
        if (experiment_of(L, flag))
            continue;
        if (L->nexps == MAX_EXPERIMENTS) {
            rc = PE_ETOOBIG;
            break;
        }
        experiment_t *e = &L->exps[L->nexps++];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", pe_db_result_get(res, i, 0));
        snprintf(e->flag, sizeof e->flag, "%s", flag);
        snprintf(e->playbook, sizeof e->playbook, "%s", pe_db_result_get(res, i, 2));
        snprintf(e->change_type, sizeof e->change_type, "%s", pe_db_result_get(res, i, 4));
        e->step = -1;
        for (int s = 0; s < SIM_NSTEPS; s++)
            if (strcmp(sim_step_names[s], pe_db_result_get(res, i, 3)) == 0)
                e->step = s;
        e->first_day = -1;
    }
    pe_db_result_free(res);
    pe_db_release(L->p->pool, conn);
    return rc;
}

/* The merchant: approves the best active recommendation (top) or every one (all). */
static int approve(loop_t *L, unsigned day)
{
    if (L->p->approve == SIM_APPROVE_NONE)
        return 0;
    unsigned mask = 0;
    pe_refusal_t why = {.code = ""};
    cJSON *list = NULL;
    int rc = pe_doctor_status_parse("active", &mask, &why);
    if (rc == 0)
        rc = pe_doctor_recommendations_list(L->rec, L->p->store_id, mask, L->now_us, &list);
    if (rc != 0)
        return fail("day %u: listing recommendations: %s", day, pe_strerror(rc));
    const pe_changeset_actor_info_t merchant = {PE_CS_BY_MERCHANT, "user", "simulated-merchant"};
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(list, "recommendations"), *r;
    cJSON_ArrayForEach(r, recs)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
        if (!cJSON_IsString(id))
            continue;
        cJSON *out = NULL;
        pe_changeset_result_t res = {.refusal = {.code = ""}, .violations = NULL, .version = 0};
        int arc = pe_doctor_recommendation_approve(L->rec, L->p->store_id, id->valuestring, false,
                                                   false, &merchant, L->now_us, &out, &res);
        cJSON_Delete(out);
        pe_changeset_result_free(&res);
        if (arc == PE_ECONFLICT) { /* blocked by a guardrail, or decided meanwhile */
            L->blocked++;
            continue;
        }
        if (arc != 0) {
            rc = fail("day %u: approving recommendation %s: %s", day, id->valuestring,
                      pe_strerror(arc));
            break;
        }
        L->approved++;
        if (L->p->approve == SIM_APPROVE_TOP)
            break;
    }
    cJSON_Delete(list);
    return rc;
}

/* The day's jobs at the end of day d, in the order `serve` would have run them by then. */
static void lap(loop_t *L, sim_loop_stage_t stage, int64_t *t)
{
    int64_t now = pe_now_mono_us(); /* a stopwatch, never a decision's time */
    L->seconds[stage] += (double)(now - *t) / 1e6;
    *t = now;
}

static int run_jobs(loop_t *L, unsigned d)
{
    char err[512];
    int64_t t = pe_now_mono_us();
    pe_aggregate_options_t ao = {.store_id = L->p->store_id, .wait = true};
    pe_aggregate_report_t rep;
    int rc = 0;
    /* a serve's roll-up of every store may hold the roll-up's lock past the statement timeout */
    for (int attempt = 0; attempt < JOB_ATTEMPTS; attempt++) {
        rc = pe_aggregate_run(L->p->pool, &ao, &rep, err, sizeof err);
        if (rc != PE_ETIMEOUT)
            break;
    }
    if (rc != 0)
        return fail("day %u: aggregate: %s", d, err);
    lap(L, SIM_STAGE_AGGREGATE, &t);
    /* A job that times out on a busy database is tried again, as serve's next period would. */
    pe_refusal_t why = {.code = ""};
    cJSON *out = NULL;
    for (int attempt = 0; attempt < JOB_ATTEMPTS; attempt++) {
        pe_doctor_request_t rq = {.now_us = L->now_us};
        rc = pe_doctor_run(L->p->pool, L->p->store_id, &rq, &out, &why);
        cJSON_Delete(out);
        out = NULL;
        if (rc != PE_ETIMEOUT)
            break;
    }
    if (rc != 0)
        return fail("day %u: diagnose: %s", d, why.message[0] ? why.message : pe_strerror(rc));
    lap(L, SIM_STAGE_DIAGNOSE, &t);
    size_t expired = 0;
    if ((rc = pe_changeset_expire_due(L->svc, L->p->store_id, &expired)) != 0)
        return fail("day %u: approval expiry: %s", d, pe_strerror(rc));
    for (int attempt = 0; attempt < JOB_ATTEMPTS; attempt++) {
        rc = pe_doctor_recommend(L->rec, L->p->store_id, L->now_us, &out);
        cJSON_Delete(out);
        out = NULL;
        if (rc != PE_ETIMEOUT)
            break;
    }
    if (rc != 0)
        return fail("day %u: recommend: %s", d, pe_strerror(rc));
    if ((rc = approve(L, d)) != 0)
        return rc;
    lap(L, SIM_STAGE_RECOMMEND, &t);
    for (int attempt = 0; attempt < JOB_ATTEMPTS; attempt++) {
        rc = pe_experiments_measure(L->p->pool, L->svc, L->p->store_id, L->now_us, &out);
        cJSON_Delete(out);
        out = NULL;
        if (rc != PE_ETIMEOUT)
            break;
    }
    if (rc != 0)
        return fail("day %u: measure: %s", d, pe_strerror(rc));
    lap(L, SIM_STAGE_MEASURE, &t);
    return 0;
}

/* ---- the truth ------------------------------------------------------------------------------ */

static cJSON *relative(double with, double without)
{
    return without != 0 ? cJSON_CreateNumber(with / without - 1) : cJSON_CreateNull();
}

static bool put(cJSON *o, const char *k, cJSON *v)
{
    if (v && cJSON_AddItemToObject(o, k, v))
        return true;
    cJSON_Delete(v);
    return false;
}

/* The experiments as they ended, from the ChangeSets (status, decision, proof) and the truth. */
static int truth_json(loop_t *L, cJSON *ap)
{
    static const char sql[] =
        "SELECT status, coalesce(to_char(started_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), coalesce(to_char(ended_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
        "       coalesce((SELECT a.actor_type FROM audit_events a WHERE a.store_id = c.store_id"
        "                  AND a.changeset_id = c.id AND a.new_state = 'ROLLED_BACK'"
        "                ORDER BY a.seq DESC LIMIT 1), ''),"
        "       coalesce(execution->'proofResult', 'null')::text,"
        "       coalesce((SELECT m.doc->>'action' FROM experiment_measurements m"
        "                  WHERE m.store_id = c.store_id AND m.changeset_id = c.id"
        "                ORDER BY m.measured_at DESC LIMIT 1), '')"
        "  FROM changesets c WHERE c.store_id = $1::uuid AND c.id = $2";
    pe_db_conn_t *conn = NULL;
    int rc = pe_db_acquire(L->p->pool, DB_TIMEOUT_MS, &conn);
    const char *policies[] = {"none", "top", "all"};
    cJSON *list = NULL;
    if (rc == 0 && (!cJSON_AddStringToObject(ap, "approve", policies[L->p->approve]) ||
                    !cJSON_AddNumberToObject(ap, "approved", (double)L->approved) ||
                    !cJSON_AddNumberToObject(ap, "blocked", (double)L->blocked) ||
                    !(list = cJSON_AddArrayToObject(ap, "experiments"))))
        rc = PE_ENOMEM;
    for (size_t i = 0; rc == 0 && i < L->nexps; i++) {
        const experiment_t *e = &L->exps[i];
        pe_db_result_t *res = NULL;
        const char *params[] = {L->p->store_id, e->id};
        if ((rc = pe_db_exec(conn, sql, 2, params, &res)) != 0 || pe_db_result_rows(res) != 1) {
            rc = rc ? rc : PE_EINTERNAL;
            pe_db_result_free(res);
            break;
        }
        cJSON *o = cJSON_CreateObject(), *tr = NULL, *eff = NULL, *proof = NULL;
        bool ok = o && cJSON_AddItemToArray(list, o);
        if (!ok)
            cJSON_Delete(o);
        ok = ok && cJSON_AddStringToObject(o, "changesetId", e->id) &&
             cJSON_AddStringToObject(o, "flagKey", e->flag) &&
             cJSON_AddStringToObject(o, "playbook", e->playbook) &&
             put(o, "step",
                 e->step >= 0 ? cJSON_CreateString(sim_step_names[e->step]) : cJSON_CreateNull()) &&
             cJSON_AddStringToObject(o, "changeType", e->change_type) &&
             cJSON_AddStringToObject(o, "status", pe_db_result_get(res, 0, 0)) &&
             cJSON_AddStringToObject(o, "startedAt", pe_db_result_get(res, 0, 1)) &&
             cJSON_AddStringToObject(o, "endedAt", pe_db_result_get(res, 0, 2)) &&
             cJSON_AddStringToObject(o, "rolledBackBy", pe_db_result_get(res, 0, 3)) &&
             cJSON_AddStringToObject(o, "lastDecision", pe_db_result_get(res, 0, 5));
        if (ok) {
            proof = cJSON_Parse(pe_db_result_get(res, 0, 4));
            ok = put(o, "proofResult", proof ? proof : cJSON_CreateNull());
        }
        if (ok && e->rule) {
            eff = cJSON_CreateObject();
            ok = put(o, "effect", eff) && cJSON_AddStringToObject(eff, "target", e->rule->target) &&
                 cJSON_AddNumberToObject(eff, "dropMultiplier", e->rule->drop_multiplier) &&
                 cJSON_AddNumberToObject(eff, "conversionMultiplier",
                                         e->rule->conversion_multiplier) &&
                 cJSON_AddNumberToObject(eff, "priceMultiplier", e->rule->price_multiplier) &&
                 cJSON_AddBoolToObject(eff, "segmented", e->rule_segmented);
        } else if (ok) {
            ok = put(o, "effect", cJSON_CreateNull());
        }
        if (ok && e->first_day >= 0)
            ok = cJSON_AddNumberToObject(o, "firstTreatedDay", e->first_day) != NULL;
        ok = ok && cJSON_AddNumberToObject(o, "treatedSessions", (double)e->treated) &&
             cJSON_AddNumberToObject(o, "controlSessions", (double)e->control) &&
             (tr = cJSON_AddObjectToObject(o, "true")) != NULL &&
             put(tr, "conversion", relative(e->orders, e->orders_without)) &&
             put(tr, "revenuePerVisitor", relative(e->revenue, e->revenue_without)) &&
             put(tr, "profitPerVisitor", relative(e->profit, e->profit_without)) &&
             cJSON_AddNumberToObject(tr, "orders", e->orders - e->orders_without) &&
             cJSON_AddNumberToObject(tr, "revenue", (e->revenue - e->revenue_without) / 100) &&
             cJSON_AddNumberToObject(tr, "profit", (e->profit - e->profit_without) / 100);
        pe_db_result_free(res);
        if (!ok)
            rc = PE_ENOMEM;
    }
    pe_db_release(L->p->pool, conn);
    return rc;
}

/* The holdout's truth: what Autopilot did to the exposed visitors (as happened against the same
 * sessions at baseline), and the engine's attribution over the whole simulation. */
static int attribution_json(loop_t *L, cJSON *ap)
{
    const group_truth_t *h = &L->groups[0], *e = &L->groups[1];
    cJSON *o = cJSON_AddObjectToObject(ap, "holdout"), *tr = NULL;
    bool ok = o && cJSON_AddNumberToObject(o, "units", h->units) &&
              cJSON_AddNumberToObject(o, "exposedUnits", e->units) &&
              (tr = cJSON_AddObjectToObject(o, "true")) &&
              put(tr, "conversionRate", relative(e->converted[0], e->converted[1])) &&
              put(tr, "revenuePerVisitor", relative(e->revenue[0], e->revenue[1])) &&
              put(tr, "profitPerVisitor", relative(e->profit[0], e->profit[1])) &&
              cJSON_AddNumberToObject(tr, "revenue", (e->revenue[0] - e->revenue[1]) / 100) &&
              cJSON_AddNumberToObject(tr, "profit", (e->profit[0] - e->profit[1]) / 100) &&
              /* the holdout gets no treatment: 0 unless a PERMANENT change reached it */
              cJSON_AddNumberToObject(tr, "holdoutProfit", (h->profit[0] - h->profit[1]) / 100);
    if (!ok)
        return PE_ENOMEM;
    int32_t to = L->p->first_day + (int32_t)L->p->days - 1;
    int32_t from = L->p->first_day;
    if (to - from >= PE_AGGREGATE_MAX_DAYS)
        from = to - PE_AGGREGATE_MAX_DAYS + 1;
    cJSON *att = NULL;
    int rc = pe_experiments_attribution(L->p->pool, L->p->store_id, from, to, L->now_us, &att);
    if (rc == 0 && !put(ap, "attribution", att))
        rc = PE_ENOMEM;
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------- */

static int setup(loop_t *L)
{
    char err[256];
    for (size_t s = 0; s < SIM_NSOURCES; s++) {
        char v[128];
        source_value(&sim_sources[s], v, sizeof v);
        if (!(L->sources[s] = cJSON_CreateString(v)))
            return PE_ENOMEM;
        for (int c = 0; c < 2; c++)
            if (sim_sources[s].campaigns[c] &&
                !(L->campaigns[s][c] = cJSON_CreateString(sim_sources[s].campaigns[c])))
                return PE_ENOMEM;
    }
    if (!(L->exps = calloc(MAX_EXPERIMENTS, sizeof *L->exps)))
        return PE_ENOMEM;
    if (L->p->redis_url && L->p->redis_url[0])
        L->redis = pe_redis_new(L->p->redis_url, REDIS_TIMEOUT, err, sizeof err);
    pe_flags_config_t fcfg = {.db = L->p->pool, .redis = L->redis};
    if (!(L->flags = pe_flags_new(&fcfg)))
        return PE_ENOMEM;
    pe_changeset_config_t cscfg = {.db = L->p->pool, .clock = sim_clock, .clock_ctx = L};
    cscfg.flags = pe_changeset_flag_hooks(L->flags);
    if (!(L->svc = pe_changeset_service_new(&cscfg)))
        return PE_ENOMEM;
    pe_doctor_recommender_config_t rcfg = {.db = L->p->pool, .changesets = L->svc};
    pe_refusal_t why = {.code = ""};
    if (!(L->rec = pe_doctor_recommender_new(&rcfg, &why)))
        return PE_ENOMEM;
    return 0;
}

static void teardown(loop_t *L)
{
    pe_flags_set_release(L->set);
    pe_doctor_recommender_free(L->rec);
    pe_changeset_service_free(L->svc);
    pe_flags_free(L->flags);
    pe_redis_free(L->redis);
    for (size_t s = 0; s < SIM_NSOURCES; s++) {
        cJSON_Delete(L->sources[s]);
        cJSON_Delete(L->campaigns[s][0]);
        cJSON_Delete(L->campaigns[s][1]);
    }
    cJSON_Delete(L->batch);
    free(L->exps);
    free(L->units);
}

int sim_autopilot_run(const sim_autopilot_params_t *p, pe_sim_t *sim, cJSON **out,
                      sim_autopilot_totals_t *totals)
{
    cJSON *ap = cJSON_CreateObject();
    loop_t L;
    memset(&L, 0, sizeof L);
    L.p = p;
    L.sim = sim;
    *out = NULL;
    memset(totals, 0, sizeof *totals);
    int rc = ap ? setup(&L) : PE_ENOMEM;
    if (rc != 0) {
        teardown(&L);
        cJSON_Delete(ap);
        return fail("cannot start the engine: %s", pe_strerror(rc));
    }
    sim_hooks_t hooks = {treat, observe, &L};
    sim_set_hooks(sim, &hooks);
    for (unsigned d = 0; d < p->days && rc == 0; d++) {
        if ((rc = refresh(&L)) != 0) {
            rc = fail("day %u: reading the store's flags and ChangeSets: %s", d, pe_strerror(rc));
            break;
        }
        int64_t t = pe_now_mono_us();
        rc = sim_run_days(sim, d, 1, p->workers, p->deliver, p->deliver_ctx);
        if (rc == 0)
            rc = L.error;
        if (rc == 0)
            rc = flush_exposures(&L);
        lap(&L, SIM_STAGE_TRAFFIC, &t);
        if (rc != 0) {
            rc = fail("day %u: delivering the day's events: %s", d, pe_strerror(rc));
            break;
        }
        int64_t at = p->day_starts[d + 1] + JOB_DELAY_US;
        L.now_us = at < p->real_now_us ? at : p->real_now_us;
        rc = run_jobs(&L, d);
    }
    if (rc == 0 && (rc = truth_json(&L, ap)) != 0)
        rc = fail("reading the experiments' outcomes: %s", pe_strerror(rc));
    if (rc == 0 && (rc = attribution_json(&L, ap)) != 0)
        rc = fail("attribution: %s", pe_strerror(rc));
    if (rc == 0) {
        totals->experiments = L.nexps;
        totals->approved = L.approved;
        memcpy(totals->seconds, L.seconds, sizeof totals->seconds);
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(ap, "experiments");
        const cJSON *e;
        cJSON_ArrayForEach(e, list)
        {
            const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "status"));
            totals->proven += st && (strcmp(st, "PROVEN") == 0 || strcmp(st, "PERMANENT") == 0);
            totals->rolled_back += st && strcmp(st, "ROLLED_BACK") == 0;
            totals->running += st && (strcmp(st, "ACTIVE") == 0 || strcmp(st, "MEASURING") == 0);
        }
    }
    teardown(&L);
    if (rc == 0)
        *out = ap;
    else
        cJSON_Delete(ap);
    return rc;
}
