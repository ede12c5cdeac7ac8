/*
 * lifecycle.c — the ChangeSet state machine: the one table of allowed transitions (TABLE: who
 * may trigger each edge and what it does besides moving the state) and the code that carries an
 * edge out (pe_changeset_transition, one database transaction walking the steps of STEPS).
 *
 *   ┌───────┐  discard (M)                                   ┌──────────┐
 *   │ DRAFT │───────────────────────────────────────────────▶│ ARCHIVED │
 *   └───┬───┘                                                └──────────┘
 *       │ submit (M, A)                                            ▲
 *       ▼                                                          │ reject (M)
 *   ┌──────────────────┐                                           │ expire (S)
 *   │ PENDING_APPROVAL │───────────────────────────────────────────┘
 *   └────────┬─────────┘
 *            │ approve (M; guarded)
 *            ▼
 *   ┌────────┐  roll back (M, S, A)                  ┌─────────────┐
 *   │ ACTIVE │──────────────────────────────────────▶│ ROLLED_BACK │
 *   └───┬────┘                                       └────────┬────┘
 *       │ measure (S, A)                              ▲   ▲   │ keep anyway (M; confirm, guarded)
 *       ▼                                             │   │   ▼
 *   ┌───────────┐  roll back (M, S, A)                │   │ ┌───────────┐
 *   │ MEASURING │─────────────────────────────────────┘   │ │ PERMANENT │
 *   └─────┬─────┘                                         │ └───────────┘
 *         │ prove (S, A)                                  │       ▲
 *         ▼                                               │       │ adopt (M, A; guarded)
 *   ┌────────┐  roll back (M)                             │       │
 *   │ PROVEN │────────────────────────────────────────────┘       │
 *   └───┬────┘                                                    │
 *       └─────────────────────────────────────────────────────────┘
 *
 *   M merchant, S system, A autopilot. PERMANENT and ARCHIVED have no way out.
 *
 * The edges (TABLE). Every one is carried out by pe_changeset_transition (expiry reaches it
 * through pe_changeset_expire_due, in service.c); its effects (PE_CS_T_…) choose which steps
 * of STEPS run besides those every edge runs:
 *
 *   from → to                    who    effects                                  audit action
 *   DRAFT → PENDING_APPROVAL     M A    SUBMIT                                   submitted
 *   DRAFT → ARCHIVED             M A    -                                        archived
 *   PENDING_APPROVAL → ACTIVE    M      GUARDED APPROVE STAMP_START FLAG_ENABLE  approved
 *   PENDING_APPROVAL → ARCHIVED  M      REJECT                                   rejected
 *   PENDING_APPROVAL → ARCHIVED  S      EXPIRE                                   expired
 *   PENDING_APPROVAL → ARCHIVED  A      EXPIRE                                   withdrawn
 *   ACTIVE → MEASURING           S A    -                                        measured
 *   ACTIVE → ROLLED_BACK         M S A  STAMP_END FLAG_DISABLE                   rolled_back
 *   MEASURING → PROVEN           S A    NEEDS_PROOF STAMP_END                    proven
 *   MEASURING → ROLLED_BACK      M S A  STAMP_END FLAG_DISABLE                   rolled_back
 *   PROVEN → PERMANENT           M A    GUARDED FLAG_WINNER                      made_permanent
 *   PROVEN → ROLLED_BACK         M      FLAG_DISABLE                             rolled_back
 *   ROLLED_BACK → PERMANENT      M      CONFIRM GUARDED FLAG_WINNER              made_permanent
 *
 * The steps (STEPS), in the order they run; "every" runs on every edge, otherwise the step runs
 * when the edge has one of the effects named. The first step that fails ends the walk, and the
 * transaction rolls back whole:
 *
 *   step                when                          what it does           refusal codes
 *   parse_request       every                         "to" known, reason     invalid_request,
 *                                                     ≤ 4000 bytes           too_long
 *   begin_transaction   every                         connection, BEGIN
 *   lock_row            every                         SELECT … FOR UPDATE    (PE_ENOTFOUND)
 *   check_version       every                         the version (ETag)     stale_version
 *   find_edge           every                         the TABLE row, actor   invalid_transition,
 *                                                                            forbidden_transition
 *   require_confirm     CONFIRM                       "confirm": true        confirmation_required
 *   take_request        every                         currentMetrics,
 *                                                     proofResult recorded
 *   require_proof       NEEDS_PROOF                   proofResult present    missing_field
 *   check_guardrails    GUARDED SUBMIT                pe_guardrails_check
 *   enforce_guardrails  GUARDED                       block, or override     guardrail_violation
 *                                                     (force + confirm)
 *   set_approval        SUBMIT APPROVE REJECT EXPIRE  approval.status, …
 *   set_execution       every                         execution.status,
 *                                                     startedAt / endedAt
 *   validate_doc        every                         PE_CHANGESET_FULL      the contract's codes
 *   run_flag_hook       FLAG_ENABLE FLAG_DISABLE      cfg.flags.enable /     flag_conflict,
 *                       FLAG_WINNER                   disable / serve_winner flag_failed
 *   write_row           every                         UPDATE changesets
 *   append_event        every                         audit event (action)
 *   queue_outbox        every                         notification_outbox
 *   run_request_hook    every                         the caller's           (its PE_E… code)
 *                                                     in_transaction, if any
 *   commit              every                         COMMIT
 *   read_back           every                         the document for *out
 *
 * After the walk, finish releases the connection, then (holding none) tells the flag hooks a
 * committed flag changed and records a guardrail block as its own audit event (log_block).
 *
 * Invariants:
 *  1. TABLE is the only place that allows a transition; an edge absent from it is refused with
 *     the current state and the allowed next states named.
 *  2. Every edge names the audit action it appends and the function that carries it out.
 *  3. Leaving ACTIVE/MEASURING/PROVEN for ROLLED_BACK is never guarded: a rollback must never be
 *     blocked by the checks that protect going live.
 *  4. PERMANENT and ARCHIVED are terminal.
 *  5. A transition's guardrail check, audit event, outbox row, flag hook and timestamps commit
 *     together or not at all (one transaction, the row locked first). A transition blocked by
 *     guardrails still leaves a trace: the block is appended as its own audit event
 *     (guardrail_blocked) after the rollback.
 *  6. In STEPS, a step that runs for some effects only comes after find_edge, which finds the
 *     edge those effects belong to.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changeset_internal.h"
#include "pe/guardrails.h"

#define ACQUIRE_TIMEOUT_MS 5000

#define M PE_CS_BY_MERCHANT
#define S PE_CS_BY_SYSTEM
#define A PE_CS_BY_AUTOPILOT

#define RUN      "pe_changeset_transition"
#define RUN_DUE  "pe_changeset_expire_due"
#define FLAG_ANY (PE_CS_T_FLAG_ENABLE | PE_CS_T_FLAG_DISABLE | PE_CS_T_FLAG_WINNER)

/* from → to | who | effects | audit action | function */
static const pe_changeset_transition_t TABLE[] = {
    {PE_CS_DRAFT, PE_CS_PENDING_APPROVAL, M | A, PE_CS_T_SUBMIT, "submitted", RUN},
    {PE_CS_DRAFT, PE_CS_ARCHIVED, M | A, 0, "archived", RUN},
    {PE_CS_PENDING_APPROVAL, PE_CS_ACTIVE, M,
     PE_CS_T_GUARDED | PE_CS_T_APPROVE | PE_CS_T_STAMP_START | PE_CS_T_FLAG_ENABLE, "approved",
     RUN},
    {PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, M, PE_CS_T_REJECT, "rejected", RUN},
    {PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, S, PE_CS_T_EXPIRE, "expired", RUN_DUE},
    /* the autopilot withdraws a proposal whose finding is gone (src/doctor/recommendations.c) */
    {PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, A, PE_CS_T_EXPIRE, "withdrawn", RUN},
    {PE_CS_ACTIVE, PE_CS_MEASURING, S | A, 0, "measured", RUN},
    {PE_CS_ACTIVE, PE_CS_ROLLED_BACK, M | S | A, PE_CS_T_STAMP_END | PE_CS_T_FLAG_DISABLE,
     "rolled_back", RUN},
    {PE_CS_MEASURING, PE_CS_PROVEN, S | A, PE_CS_T_NEEDS_PROOF | PE_CS_T_STAMP_END, "proven", RUN},
    {PE_CS_MEASURING, PE_CS_ROLLED_BACK, M | S | A, PE_CS_T_STAMP_END | PE_CS_T_FLAG_DISABLE,
     "rolled_back", RUN},
    {PE_CS_PROVEN, PE_CS_PERMANENT, M | A, PE_CS_T_GUARDED | PE_CS_T_FLAG_WINNER, "made_permanent",
     RUN},
    {PE_CS_PROVEN, PE_CS_ROLLED_BACK, M, PE_CS_T_FLAG_DISABLE, "rolled_back", RUN},
    {PE_CS_ROLLED_BACK, PE_CS_PERMANENT, M, PE_CS_T_CONFIRM | PE_CS_T_GUARDED | PE_CS_T_FLAG_WINNER,
     "made_permanent", RUN},
};

#undef M
#undef S
#undef A

static const char *const NAMES[PE_CS_NSTATES] = {"DRAFT",     "PENDING_APPROVAL", "ACTIVE",
                                                 "MEASURING", "PROVEN",           "ROLLED_BACK",
                                                 "PERMANENT", "ARCHIVED"};

const char *pe_changeset_state_name(pe_changeset_state_t s)
{
    return (unsigned)s < PE_CS_NSTATES ? NAMES[s] : NULL;
}

int pe_changeset_state_parse(const char *name, pe_changeset_state_t *out)
{
    for (unsigned i = 0; name && i < PE_CS_NSTATES; i++)
        if (strcmp(NAMES[i], name) == 0) {
            *out = (pe_changeset_state_t)i;
            return 0;
        }
    return PE_EINVAL;
}

const pe_changeset_transition_t *
pe_changeset_transition_find(pe_changeset_state_t from, pe_changeset_state_t to, unsigned actor)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLE); i++)
        if (TABLE[i].from == from && TABLE[i].to == to && (!actor || (TABLE[i].actors & actor)))
            return &TABLE[i];
    return NULL;
}

void pe_changeset_next_states(pe_changeset_state_t from, unsigned actor, char *out, size_t outlen)
{
    size_t n = 0;
    bool seen[PE_CS_NSTATES] = {false};
    out[0] = '\0';
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLE) && n < outlen; i++) {
        const pe_changeset_transition_t *t = &TABLE[i];
        if (t->from != from || (actor && !(t->actors & actor)) || seen[t->to])
            continue;
        seen[t->to] = true;
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? ", " : "", NAMES[t->to]);
    }
    if (!out[0])
        snprintf(out, outlen, "none");
}

const pe_changeset_transition_t *pe_changeset_transitions(size_t *count)
{
    *count = PE_ARRAY_LEN(TABLE);
    return TABLE;
}

/* ---- carrying an edge out -------------------------------------------------------------------- */

/* One transition in flight: what was asked (borrowed from the caller), and what the steps have
 * found and built so far. Lives on pe_changeset_transition's stack; finish frees what it owns. */
typedef struct {
    pe_changeset_service_t *svc;
    const char *store_id;
    const char *id;
    const pe_changeset_transition_req_t *req;
    const pe_changeset_actor_info_t *actor;
    pe_changeset_result_t *res;
    cJSON **out;

    pe_changeset_state_t to;            /* parse_request */
    pe_db_conn_t *conn;                 /* begin_transaction; owned until finish */
    pe_changeset_row_t row;             /* lock_row; row.doc is edited in place, owned */
    const char *from;                   /* lock_row: the state's name as locked */
    const pe_changeset_transition_t *t; /* find_edge: the TABLE row */
    cJSON *exec, *appr;                 /* take_request: borrowed from row.doc */
    cJSON *violations;                  /* check_guardrails; owned, NULL when not checked */
    bool checked, overridden, blocked;  /* what the guardrail steps did */
    int64_t now_us;                     /* the service's clock when the transition began */
    char now[32];                       /* "" until now_of first stamps it */
    pe_changeset_flag_outcome_t flag;   /* run_flag_hook; key "" when no hook wrote */
    bool flag_committed;                /* commit: a flag was written and committed */
} txn_t;

/* A step: returns 0 to go on, or a PE_E… code (with x->res->refusal filled when the caller
 * gets a refusal code) that ends the walk and rolls the transaction back. */
typedef int (*step_fn)(txn_t *x);

typedef struct {
    unsigned when; /* PE_CS_T_… effects of the edge that make the step run; 0 = every edge */
    step_fn run;
} step_t;

static const char *actor_words(unsigned actors, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s%s%s", actors & PE_CS_BY_MERCHANT ? "merchant" : "",
             (actors & PE_CS_BY_MERCHANT) && (actors & ~PE_CS_BY_MERCHANT) ? ", " : "",
             actors & PE_CS_BY_SYSTEM ? "system" : "",
             (actors & PE_CS_BY_SYSTEM) && (actors & PE_CS_BY_AUTOPILOT) ? ", " : "",
             actors & PE_CS_BY_AUTOPILOT ? "autopilot" : "");
    return out;
}

static const char *str_at(const cJSON *o, const char *k1, const char *k2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k1);
    if (k2)
        v = cJSON_GetObjectItemCaseSensitive(v, k2);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int set_str(cJSON *o, const char *k, const char *v)
{
    cJSON *s = cJSON_CreateString(v);
    if (!s)
        return PE_ENOMEM;
    if (cJSON_GetObjectItemCaseSensitive(o, k))
        return cJSON_ReplaceItemInObjectCaseSensitive(o, k, s) ? 0 : PE_ENOMEM;
    return cJSON_AddItemToObject(o, k, s) ? 0 : PE_ENOMEM;
}

static int set_item(cJSON *o, const char *k, const cJSON *v)
{
    cJSON *c = cJSON_Duplicate(v, true);
    if (!c)
        return PE_ENOMEM;
    if (cJSON_GetObjectItemCaseSensitive(o, k))
        return cJSON_ReplaceItemInObjectCaseSensitive(o, k, c) ? 0 : PE_ENOMEM;
    return cJSON_AddItemToObject(o, k, c) ? 0 : PE_ENOMEM;
}

static const char *title_for(const char *action)
{
    static const struct {
        const char *action, *title;
    } T[] = {{"submitted", "A ChangeSet awaits your approval"},
             {"approved", "ChangeSet approved and live"},
             {"rejected", "ChangeSet rejected"},
             {"expired", "ChangeSet approval expired"},
             {"measured", "ChangeSet is being measured"},
             {"proven", "ChangeSet proven"},
             {"rolled_back", "ChangeSet rolled back"},
             {"made_permanent", "ChangeSet made permanent"},
             {"archived", "ChangeSet archived"}};
    for (size_t i = 0; i < PE_ARRAY_LEN(T); i++)
        if (strcmp(T[i].action, action) == 0)
            return T[i].title;
    return "ChangeSet updated";
}

/* The one timestamp of a transition: approvedAt, startedAt and endedAt agree. */
static const char *now_of(txn_t *x)
{
    if (!x->now[0])
        pe_time_format_rfc3339(x->now_us, x->now, sizeof x->now);
    return x->now;
}

/* The reason the audit event and the notification carry: the caller's, else the edge's title. */
static const char *reason_of(const txn_t *x)
{
    return x->req->reason && x->req->reason[0] ? x->req->reason : title_for(x->t->action);
}

/* ---- the steps, in STEPS order --------------------------------------------------------------- */

static int parse_request(txn_t *x)
{
    if (!x->req->to || pe_changeset_state_parse(x->req->to, &x->to) != 0)
        return pe_refuse(&x->res->refusal, PE_EINVAL, "invalid_request",
                         "to: must be one of DRAFT, PENDING_APPROVAL, ACTIVE, MEASURING, PROVEN, "
                         "ROLLED_BACK, PERMANENT, ARCHIVED");
    if (x->req->reason && strlen(x->req->reason) > 4000)
        return pe_refuse(&x->res->refusal, PE_EINVAL, "too_long",
                         "reason: must be at most 4000 bytes");
    /* the same text rule as every other string of a ChangeSet (model.c) */
    if (x->req->reason && (!pe_utf8_valid(x->req->reason, strlen(x->req->reason)) ||
                           pe_text_has_control(x->req->reason, strlen(x->req->reason))))
        return pe_refuse(&x->res->refusal, PE_EINVAL, "invalid_format",
                         "reason: must be UTF-8 text without control characters");
    return 0;
}

static int begin_transaction(txn_t *x)
{
    int rc = pe_db_acquire(x->svc->cfg.db, ACQUIRE_TIMEOUT_MS, &x->conn);
    return rc != 0 ? rc : pe_db_begin(x->conn);
}

/* Locks the row first so the version, the state, the audit chain's next link and the update
 * agree (service.c invariant 1). */
static int lock_row(txn_t *x)
{
    int rc = pe_changeset_row_load(x->conn, x->store_id, x->id, true, &x->row);
    if (rc != 0)
        return rc;
    x->res->version = x->row.version;
    x->from = pe_changeset_state_name(x->row.state);
    return 0;
}

static int check_version(txn_t *x)
{
    int64_t want = x->req->expected_version;
    if (want < 0 || want == x->row.version)
        return 0;
    return pe_refuse(&x->res->refusal, PE_ECONFLICT, "stale_version",
                     "version %lld is stale: the ChangeSet is at version %lld (%s); read it again",
                     (long long)want, (long long)x->row.version, x->from);
}

/* The edge for anyone first, so that an edge the lifecycle lacks (409, naming the next states)
 * is told apart from one this actor may not take (403, naming who may). */
static int find_edge(txn_t *x)
{
    char next[160], words[64];
    if (!pe_changeset_transition_find(x->row.state, x->to, 0)) {
        pe_changeset_next_states(x->row.state, 0, next, sizeof next);
        return pe_refuse(&x->res->refusal, PE_ECONFLICT, "invalid_transition",
                         "cannot move from %s to %s; allowed next states: %s", x->from, x->req->to,
                         next);
    }
    x->t = pe_changeset_transition_find(x->row.state, x->to, x->actor->kind);
    if (x->t)
        return 0;
    unsigned who = 0;
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLE); i++)
        if (TABLE[i].from == x->row.state && TABLE[i].to == x->to)
            who |= TABLE[i].actors;
    return pe_refuse(&x->res->refusal, PE_EFORBIDDEN, "forbidden_transition",
                     "only %s may move a ChangeSet from %s to %s",
                     actor_words(who, words, sizeof words), x->from, x->req->to);
}

static int require_confirm(txn_t *x)
{
    if (x->req->confirm)
        return 0;
    return pe_refuse(&x->res->refusal, PE_ECONFLICT, "confirmation_required",
                     "moving a %s ChangeSet to %s needs explicit confirmation: send "
                     "\"confirm\": true",
                     x->from, x->req->to);
}

/* Records what the caller measured, whatever the edge: the document keeps the latest. */
static int take_request(txn_t *x)
{
    x->exec = cJSON_GetObjectItemCaseSensitive(x->row.doc, "execution");
    x->appr = cJSON_GetObjectItemCaseSensitive(x->row.doc, "approval");
    if (x->req->current_metrics && set_item(x->exec, "currentMetrics", x->req->current_metrics))
        return PE_ENOMEM;
    if (x->req->proof_result && set_item(x->exec, "proofResult", x->req->proof_result))
        return PE_ENOMEM;
    return 0;
}

static int require_proof(txn_t *x)
{
    if (cJSON_GetObjectItemCaseSensitive(x->exec, "proofResult"))
        return 0;
    return pe_refuse(&x->res->refusal, PE_EINVAL, "missing_field",
                     "proofResult: is required to move a ChangeSet to PROVEN");
}

/* Checked on every edge that goes or stays live; a submit only records what it finds, for the
 * merchant who will approve. */
static int check_guardrails(txn_t *x)
{
    x->checked = true;
    return pe_guardrails_check(x->conn, x->store_id, x->row.doc, x->svc->cfg.extra_checks,
                               &x->violations);
}

/* A violation blocks a guarded edge unless the merchant forces it with confirmation; the
 * override is audited before the transition itself. */
static int enforce_guardrails(txn_t *x)
{
    const pe_changeset_transition_req_t *req = x->req;
    cJSON *om = NULL;
    int nviol = x->violations ? cJSON_GetArraySize(x->violations) : 0;
    int rc = 0;
    if (nviol == 0)
        goto out;
    if (!(req->force && req->confirm)) {
        x->blocked = true;
        x->res->violations = cJSON_Duplicate(x->violations, true);
        const char *first = str_at(cJSON_GetArrayItem(x->violations, 0), "message", NULL);
        rc = pe_refuse(&x->res->refusal, PE_ECONFLICT, "guardrail_violation",
                       "blocked by %d guardrail violation%s: %s%s", nviol, nviol == 1 ? "" : "s",
                       first ? first : "",
                       req->force ? " (force needs \"confirm\": true)"
                                  : " (force-approve with \"force\": true, \"confirm\": true)");
        goto out;
    }
    x->overridden = true;
    rc = PE_ENOMEM;
    om = cJSON_CreateObject();
    if (!om || !cJSON_AddStringToObject(om, "attemptedState", req->to) ||
        !cJSON_AddItemToObject(om, "violations", cJSON_Duplicate(x->violations, true)))
        goto out;
    rc = pe_changeset_audit_append(
        x->conn, x->store_id, x->id, &x->row, x->actor, x->now_us, "guardrail_overridden", x->from,
        x->from,
        req->reason && req->reason[0] ? req->reason : "Guardrails overridden with confirmation",
        om);
out:
    cJSON_Delete(om);
    return rc;
}

static int set_approval(txn_t *x)
{
    unsigned e = x->t->effects;
    int rc = 0;
    if (e & PE_CS_T_SUBMIT) {
        char expires[32];
        pe_time_format_rfc3339(x->now_us + (int64_t)x->svc->cfg.approval_timeout_s * 1000000,
                               expires, sizeof expires);
        rc = set_str(x->appr, "status", "pending");
        rc = rc ? rc : set_str(x->appr, "expiresAt", expires);
    }
    if (rc == 0 && (e & PE_CS_T_APPROVE)) {
        rc = set_str(x->appr, "status", "approved");
        rc = rc ? rc : set_str(x->appr, "approvedBy", x->actor->id);
        rc = rc ? rc : set_str(x->appr, "approvedAt", now_of(x));
    }
    if (rc == 0 && (e & PE_CS_T_REJECT))
        rc = set_str(x->appr, "status", "rejected");
    if (rc == 0 && (e & PE_CS_T_EXPIRE))
        rc = set_str(x->appr, "status", "expired");
    return rc;
}

static int set_execution(txn_t *x)
{
    unsigned e = x->t->effects;
    int rc = set_str(x->exec, "status", x->req->to);
    if (rc == 0 && (e & PE_CS_T_STAMP_START))
        rc = set_str(x->exec, "startedAt", now_of(x));
    if (rc == 0 && (e & PE_CS_T_STAMP_END))
        rc = set_str(x->exec, "endedAt", now_of(x));
    return rc;
}

/* Validates what is about to be stored (service.c invariant 3). The service wrote everything
 * else, so only what the caller sent (proofResult, currentMetrics) can be wrong here: a 400. */
static int validate_doc(txn_t *x)
{
    pe_refusal_t verr;
    cJSON_ReplaceItemInObjectCaseSensitive(x->row.doc, "version",
                                           cJSON_CreateNumber((double)(x->row.version + 1)));
    cJSON_AddArrayToObject(x->row.doc, "auditTrail");
    if (pe_changeset_validate(x->row.doc, PE_CHANGESET_FULL, &verr) == 0)
        return 0;
    return pe_refuse(&x->res->refusal, PE_EINVAL, verr.code, "%s", verr.message);
}

/* Runs the edge's flag hook on the transition's connection, inside its transaction (invariant
 * 5); x->flag.key is set when a hook ran. A refusal of the flag module (a merchant's flag holds
 * the key, the plan does not make a valid flag) is a 409; anything else keeps its own status. */
static int run_flag_hook(txn_t *x)
{
    const pe_changeset_flag_hooks_t *h = &x->svc->cfg.flags;
    pe_changeset_flag_outcome_t *fo = &x->flag;
    unsigned e = x->t->effects;
    char err[256] = "";
    const char *verb = "enabled";
    int rc = 0;
    memset(fo, 0, sizeof *fo);
    if ((e & PE_CS_T_FLAG_ENABLE) && h->enable) {
        rc = h->enable(h->ctx, x->conn, x->store_id, x->id, x->row.doc, fo, err, sizeof err);
    } else if ((e & PE_CS_T_FLAG_DISABLE) && h->disable) {
        verb = "disabled";
        rc = h->disable(h->ctx, x->conn, x->store_id, x->id, x->row.doc, fo, err, sizeof err);
    } else if ((e & PE_CS_T_FLAG_WINNER) && h->serve_winner) {
        const char *winner = str_at(x->exec, "proofResult", "winningVariant");
        verb = "switched to the winning variant";
        rc = h->serve_winner(h->ctx, x->conn, x->store_id, x->id, x->row.doc,
                             winner ? winner : "treatment", fo, err, sizeof err);
    }
    if (rc == PE_EINVAL || rc == PE_ECONFLICT || rc == PE_ENOTFOUND)
        return pe_refuse(&x->res->refusal, PE_ECONFLICT, "flag_conflict",
                         "the feature flag %s could not be %s, so nothing changed: %s", fo->key,
                         verb, err[0] ? err : pe_strerror(rc));
    if (rc != 0)
        return pe_refuse(&x->res->refusal, rc, "flag_failed",
                         "the feature flag %s could not be %s, so nothing changed: %s", fo->key,
                         verb, err[0] ? err : pe_strerror(rc));
    return 0;
}

static int write_row(txn_t *x)
{
    unsigned e = x->t->effects;
    char *approval = NULL, *execution = NULL, ttl[32];
    int rc = PE_ENOMEM;
    if (!(approval = pe_json_print(x->appr)) || !(execution = pe_json_print(x->exec)))
        goto out;
    snprintf(ttl, sizeof ttl, "%u", x->svc->cfg.approval_timeout_s);
    const char *params[] = {x->store_id,
                            x->id,
                            x->req->to,
                            str_at(x->appr, "status", NULL),
                            approval,
                            execution,
                            (e & PE_CS_T_STAMP_START) ? "t" : "f",
                            (e & PE_CS_T_STAMP_END) ? "t" : "f",
                            (e & PE_CS_T_SUBMIT) ? ttl : NULL,
                            now_of(x)};
    rc = pe_db_exec(x->conn,
                    "UPDATE changesets SET status = $3, approval_status = $4,"
                    " approval = $5::jsonb, execution = $6::jsonb, version = version + 1,"
                    " updated_at = $10::timestamptz,"
                    " started_at = CASE WHEN $7::bool THEN $10::timestamptz ELSE started_at END,"
                    " ended_at = CASE WHEN $8::bool THEN $10::timestamptz ELSE ended_at END,"
                    " expires_at = CASE WHEN $9::int IS NOT NULL"
                    "   THEN $10::timestamptz + $9::int * interval '1 second'"
                    "   WHEN $3 <> 'PENDING_APPROVAL' THEN NULL ELSE expires_at END"
                    " WHERE store_id = $1::uuid AND id = $2",
                    10, params, NULL);
out:
    free(approval);
    free(execution);
    return rc;
}

/* The edge's audit event; its metadata says what the guardrails found, the new version, the
 * metrics recorded and what the flag hook wrote. */
static int append_event(txn_t *x)
{
    const pe_changeset_flag_outcome_t *f = &x->flag;
    int rc = PE_ENOMEM;
    cJSON *meta = cJSON_CreateObject();
    cJSON *g = meta ? cJSON_AddObjectToObject(meta, "guardrails") : NULL;
    if (!g || !cJSON_AddBoolToObject(g, "checked", x->checked) ||
        !cJSON_AddBoolToObject(g, "overridden", x->overridden) ||
        !cJSON_AddItemToObject(g, "violations",
                               x->violations ? cJSON_Duplicate(x->violations, true)
                                             : cJSON_CreateArray()) ||
        !cJSON_AddNumberToObject(meta, "version", (double)(x->row.version + 1)) ||
        !cJSON_AddBoolToObject(meta, "confirmed", x->req->confirm))
        goto out;
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(x->exec, "currentMetrics");
    if (cm && !cJSON_AddItemToObject(meta, "metrics", cJSON_Duplicate(cm, true)))
        goto out;
    cJSON *fm = f->key[0] ? cJSON_AddObjectToObject(meta, "flag") : NULL;
    if (f->key[0] && (!fm || !cJSON_AddStringToObject(fm, "key", f->key) ||
                      !cJSON_AddNumberToObject(fm, "version", (double)f->version) ||
                      !cJSON_AddBoolToObject(fm, "enabled", f->enabled) ||
                      !cJSON_AddNumberToObject(fm, "rolloutPercentage", f->rollout_percentage) ||
                      (f->variant[0] && !cJSON_AddStringToObject(fm, "variant", f->variant))))
        goto out;
    rc = pe_changeset_audit_append(x->conn, x->store_id, x->id, &x->row, x->actor, x->now_us,
                                   x->t->action, x->from, x->req->to, reason_of(x), meta);
out:
    cJSON_Delete(meta);
    return rc;
}

static int queue_outbox(txn_t *x)
{
    char kind[64];
    snprintf(kind, sizeof kind, "changeset.%s", x->t->action);
    return pe_changeset_outbox_queue(x->conn, x->store_id, x->id, x->now_us, kind,
                                     title_for(x->t->action), x->from, x->req->to, reason_of(x),
                                     x->actor);
}

/* The caller's own writes (req->in_transaction), inside the transaction like the flag hook:
 * they commit with the transition or not at all. */
static int run_request_hook(txn_t *x)
{
    const pe_changeset_transition_req_t *r = x->req;
    return r->in_transaction
               ? r->in_transaction(r->in_transaction_ctx, x->conn, x->store_id, x->id, x->row.doc)
               : 0;
}

static int commit(txn_t *x)
{
    int rc = pe_db_commit(x->conn);
    x->flag_committed = rc == 0 && x->flag.key[0];
    return rc;
}

static int read_back(txn_t *x)
{
    return pe_changeset_doc_read(x->conn, x->store_id, x->id, x->out);
}

/* The steps of every transition, in order; the header comment's second table. */
static const step_t STEPS[] = {
    {0, parse_request},
    {0, begin_transaction},
    {0, lock_row},
    {0, check_version},
    {0, find_edge},
    {PE_CS_T_CONFIRM, require_confirm},
    {0, take_request},
    {PE_CS_T_NEEDS_PROOF, require_proof},
    {PE_CS_T_GUARDED | PE_CS_T_SUBMIT, check_guardrails},
    {PE_CS_T_GUARDED, enforce_guardrails},
    {PE_CS_T_SUBMIT | PE_CS_T_APPROVE | PE_CS_T_REJECT | PE_CS_T_EXPIRE, set_approval},
    {0, set_execution},
    {0, validate_doc},
    {FLAG_ANY, run_flag_hook},
    {0, write_row},
    {0, append_event},
    {0, queue_outbox},
    {0, run_request_hook},
    {0, commit},
    {0, read_back},
};

/* ---- after the walk -------------------------------------------------------------------------- */

/* Records a blocked transition as its own audit event and notification, in a transaction of
 * its own: the transition's was rolled back. Best effort: a failure is logged, not returned. */
static void log_block(const txn_t *x)
{
    pe_db_conn_t *conn = NULL;
    pe_changeset_row_t row = {0};
    const char *state = pe_changeset_state_name(x->row.state);
    cJSON *meta = cJSON_CreateObject();
    if (!meta || !cJSON_AddStringToObject(meta, "attemptedState", x->req->to) ||
        !cJSON_AddBoolToObject(meta, "forceWithoutConfirm", x->req->force) ||
        !cJSON_AddItemToObject(meta, "violations", cJSON_Duplicate(x->violations, true)))
        goto out;
    if (pe_db_acquire(x->svc->cfg.db, ACQUIRE_TIMEOUT_MS, &conn) != 0 || pe_db_begin(conn) != 0 ||
        pe_changeset_row_load(conn, x->store_id, x->id, true, &row) != 0)
        goto out;
    if (pe_changeset_audit_append(conn, x->store_id, x->id, &row, x->actor, x->now_us,
                                  "guardrail_blocked", state, state, "Blocked by guardrails",
                                  meta) == 0 &&
        pe_changeset_outbox_queue(conn, x->store_id, x->id, x->now_us,
                                  "changeset.guardrail_blocked", "ChangeSet blocked by guardrails",
                                  state, state, "a guardrail would be violated", x->actor) == 0)
        pe_db_commit(conn);
out:
    if (!conn || row.doc == NULL)
        pe_log(PE_LOG_WARN, "audit_block_unlogged", "could not log a guardrail block on %s", x->id);
    pe_changeset_row_free(&row);
    cJSON_Delete(meta);
    pe_db_release(x->svc->cfg.db, conn);
}

/* Ends a transition whose walk returned rc: rolls back unless it committed, and only once the
 * connection is back in the pool runs what must not hold one (the flag hooks' committed, which
 * may publish to Redis; log_block, which takes a connection of its own). */
static void finish(txn_t *x, int rc)
{
    const pe_changeset_flag_hooks_t *h = &x->svc->cfg.flags;
    if (rc != 0 && x->conn)
        pe_db_rollback(x->conn);
    pe_db_release(x->svc->cfg.db, x->conn);
    x->conn = NULL;
    if (x->flag_committed && h->committed)
        h->committed(h->ctx, x->store_id);
    if (x->blocked)
        log_block(x);
    cJSON_Delete(x->violations);
    x->violations = NULL;
    pe_changeset_row_free(&x->row);
}

int pe_changeset_transition(pe_changeset_service_t *svc, const char *store_id, const char *id,
                            const pe_changeset_transition_req_t *req,
                            const pe_changeset_actor_info_t *actor, cJSON **out,
                            pe_changeset_result_t *res)
{
    txn_t x = {.svc = svc,
               .now_us = pe_changeset_now(svc),
               .store_id = store_id,
               .id = id,
               .req = req,
               .actor = actor,
               .res = res,
               .out = out};
    int rc = 0;
    pe_changeset_result_init(res);
    *out = NULL;
    for (size_t i = 0; i < PE_ARRAY_LEN(STEPS); i++) {
        const step_t *s = &STEPS[i];
        assert(!s->when || x.t); /* invariant 6 */
        if (s->when && !(x.t->effects & s->when))
            continue;
        rc = s->run(&x);
        if (rc != 0)
            goto out;
    }
out:
    finish(&x, rc);
    return rc;
}
