/*
 * pe/changeset.h — the Autopilot ChangeSet (stories 8.16, 8.17, 8.19): the contract and its
 * validator, the lifecycle state machine, the hash-chained audit trail, and the service that
 * stores all of it in PostgreSQL (sql/migrations/0007_changesets.sql).
 *
 * Invariants:
 *  1. One definition of the contract (src/changeset/model.c) drives both the validator and the
 *     exported JSON Schema; a document the validator accepts validates against the schema (the
 *     schema may be weaker where JSON Schema cannot say a rule, never stricter).
 *  2. Every refusal names the failing path: "actionPlan.rolloutPercentage: must be 0..100".
 *  3. The lifecycle is one table of allowed transitions (src/changeset/lifecycle.c); nothing
 *     else decides whether a state may follow another or who may ask for it.
 *  4. Each transition runs in one database transaction that locks the ChangeSet row, checks the
 *     version the caller read, checks guardrails, writes the feature flag (flag hooks), appends
 *     the audit event (hash chain), queues the notification in the outbox and stamps the
 *     execution times — or does none of it.
 *  5. Every statement filters by store_id: a store never sees another store's ChangeSets.
 *  6. Everything here is thread-safe (pooled connections only, no mutable globals).
 */
#ifndef PE_CHANGESET_H
#define PE_CHANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/core.h"
#include "pe/db.h"

/* ---- identifiers ----------------------------------------------------------------------------- */

/* A cuid: 'c', 8 base-36 digits of milliseconds, 16 random base-36 digits (25 chars + NUL). */
#define PE_CHANGESET_ID_LEN       26
#define PE_CHANGESET_STORE_ID_MAX 64

/* Writes a new cuid into out. Thread-safe (libsodium randomness). */
void pe_changeset_cuid(char out[PE_CHANGESET_ID_LEN]);
/* True when s is a cuid as pe_changeset_cuid writes them (^c[0-9a-z]{24}$). Pure. */
bool pe_changeset_cuid_valid(const char *s);

/* ---- the contract and its validator ------------------------------------------------------------
 */

#define PE_CHANGESET_MAX_BODY (256u * 1024)

typedef enum {
    /* A complete stored ChangeSet: every mandatory field, server-owned ones included. */
    PE_CHANGESET_FULL = 0,
    /* A document a client creates or replaces: id, version, storeId, approval, execution and
     * auditTrail may be left out (the server owns them) but are checked when present. */
    PE_CHANGESET_CLIENT,
} pe_changeset_mode_t;

/* Refusals (pe_refusal_t). Codes: missing_field, invalid_type, out_of_range, too_long,
 * too_many, unknown_field, invalid_format. The message starts with the path of the offending
 * value ("actionPlan.rolloutPercentage: must be 0..100"); a rule about the document itself has
 * no path. */

/* Validates doc against the contract in the given mode. Returns 0, or PE_EINVAL with *err
 * filled (the first failure in document order). Pure, allocation-free, thread-safe. */
int pe_changeset_validate(const cJSON *doc, pe_changeset_mode_t mode, pe_refusal_t *err);
/* Appends the JSON Schema (2020-12) of the contract ($defs for every nested type). Returns 0 or
 * PE_ENOMEM. Pure and thread-safe. */
int pe_changeset_json_schema(pe_buf_t *out);

/* ---- lifecycle --------------------------------------------------------------------------------
 */

typedef enum {
    PE_CS_DRAFT = 0,
    PE_CS_PENDING_APPROVAL,
    PE_CS_ACTIVE,
    PE_CS_MEASURING,
    PE_CS_PROVEN,
    PE_CS_ROLLED_BACK,
    PE_CS_PERMANENT,
    PE_CS_ARCHIVED, /* rejected or expired (approval.status says which); terminal */
    PE_CS_NSTATES
} pe_changeset_state_t;

/* Who asks for a transition (a bit set in the table). */
typedef enum {
    PE_CS_BY_MERCHANT = 1u << 0,  /* a merchant session or the store's secret key */
    PE_CS_BY_SYSTEM = 1u << 1,    /* the engine itself (expiry, measurement, auto-rollback) */
    PE_CS_BY_AUTOPILOT = 1u << 2, /* the autopilot loop */
} pe_changeset_actor_t;

/* What a transition does besides moving the state. */
#define PE_CS_T_GUARDED      0x01u  /* guardrail violations block it (force + confirm override) */
#define PE_CS_T_CONFIRM      0x02u  /* needs "confirm": true */
#define PE_CS_T_STAMP_START  0x04u  /* stamps execution.startedAt */
#define PE_CS_T_STAMP_END    0x08u  /* stamps execution.endedAt */
#define PE_CS_T_FLAG_ENABLE  0x10u  /* flag hook: create + enable from actionPlan.implementation */
#define PE_CS_T_FLAG_DISABLE 0x20u  /* flag hook: disable */
#define PE_CS_T_FLAG_WINNER  0x40u  /* flag hook: serve the winning variant to everyone */
#define PE_CS_T_APPROVE      0x80u  /* approval becomes approved (approvedBy, approvedAt) */
#define PE_CS_T_REJECT       0x100u /* approval becomes rejected */
#define PE_CS_T_EXPIRE       0x200u /* approval becomes expired */
#define PE_CS_T_SUBMIT       0x400u /* approval becomes pending with expiresAt = now + timeout */
#define PE_CS_T_NEEDS_PROOF  0x800u /* execution.proofResult must be present */

typedef struct {
    pe_changeset_state_t from;
    pe_changeset_state_t to;
    unsigned actors;      /* pe_changeset_actor_t bits */
    unsigned effects;     /* PE_CS_T_… */
    const char *action;   /* the audit action ("approved") */
    const char *function; /* the function behind it, for the diagram's table */
} pe_changeset_transition_t;

/* "DRAFT", …; NULL for an out-of-range value. Pure. */
const char *pe_changeset_state_name(pe_changeset_state_t s);
/* Parses a state name. Returns 0 or PE_EINVAL. Pure. */
int pe_changeset_state_parse(const char *name, pe_changeset_state_t *out);
/* The table row for from → to that actor may trigger (any actor when 0), or NULL when the
 * lifecycle has no such edge for it. Pure. */
const pe_changeset_transition_t *
pe_changeset_transition_find(pe_changeset_state_t from, pe_changeset_state_t to, unsigned actor);
/* Writes into out "A, B" the states reachable from `from` by actor (any actor when 0); "none"
 * when there are none. Pure. */
void pe_changeset_next_states(pe_changeset_state_t from, unsigned actor, char *out, size_t outlen);
/* The whole table (read-only) and its length. */
const pe_changeset_transition_t *pe_changeset_transitions(size_t *count);

/* ---- audit hash chain -------------------------------------------------------------------------
 */

#define PE_AUDIT_HASH_LEN 65 /* lower-case hex SHA-256 + NUL */

/* The fields of one audit event that the hash covers. */
typedef struct {
    const char *id;
    const char *changeset_id;
    const char *store_id;
    int64_t seq;            /* 1, 2, … per ChangeSet */
    int64_t occurred_us;    /* Unix microseconds */
    const char *actor_type; /* system | user | autopilot */
    const char *actor_id;
    const char *action;
    const char *previous_state; /* NULL for the first event */
    const char *new_state;
    const char *reason;
    const cJSON *metadata; /* an object */
} pe_changeset_audit_record_t;

/* Appends the canonical text of r (versioned, length-prefixed fields; metadata as JSON with keys
 * sorted bytewise at every level) to out. Returns 0 or PE_ENOMEM. Pure. */
int pe_changeset_audit_canonical(const pe_changeset_audit_record_t *r, pe_buf_t *out);
/* hash = hex(SHA-256(canonical(r) || prev_hash)), prev_hash "" for the first event. Returns 0 or
 * PE_ENOMEM. Pure. */
int pe_changeset_audit_hash(const pe_changeset_audit_record_t *r, const char *prev_hash,
                            char out[PE_AUDIT_HASH_LEN]);

/* ---- extension points: feature-flag hooks, guardrail checks, notifiers -------------------------
 */

/* The flag hooks: the feature-flag side effects of the lifecycle (PE_CS_T_FLAG_…), a plain
 * struct of function pointers (any member may be NULL; all NULL = no flag side effects).
 * enable / disable / serve_winner run on conn, inside the transition's database transaction,
 * after its checks and before its audit event: a non-zero return (a PE_E… code, the message in
 * err) rolls the whole transition back, so a flag changes exactly when its ChangeSet does.
 * They fill *out for the transition's audit metadata ("flag": {key, version, …}). committed
 * runs after the COMMIT of a transition whose hook wrote a flag, outside any transaction, to
 * make the change visible (Redis, caches); it cannot fail the transition.
 * pe_changeset_flag_hooks() builds the hooks that write through pe/flags.h. */
#define PE_CHANGESET_FLAG_KEY_MAX 129 /* a flag key (≤ 128 bytes) + NUL */

typedef struct {
    char key[PE_CHANGESET_FLAG_KEY_MAX]; /* the flag the ChangeSet drives */
    int64_t version;                     /* its version after the write; 0 = nothing written */
    bool enabled;
    int rollout_percentage;
    char variant[65]; /* serve_winner: the variant everyone gets */
} pe_changeset_flag_outcome_t;

typedef struct {
    /* PENDING_APPROVAL → ACTIVE: create the flag (or take over the Autopilot flag with that key)
     * from actionPlan and enable it with the rollout strategy. changeset is the document as it
     * will be stored. */
    int (*enable)(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *changeset_id,
                  const cJSON *changeset, pe_changeset_flag_outcome_t *out, char *err,
                  size_t errlen);
    /* → ROLLED_BACK: turn the flag off (everyone gets the control experience). */
    int (*disable)(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *changeset_id,
                   const cJSON *changeset, pe_changeset_flag_outcome_t *out, char *err,
                   size_t errlen);
    /* → PERMANENT: serve variant (execution.proofResult.winningVariant, else treatment) to
     * everyone. */
    int (*serve_winner)(void *ctx, pe_db_conn_t *conn, const char *store_id,
                        const char *changeset_id, const cJSON *changeset, const char *variant,
                        pe_changeset_flag_outcome_t *out, char *err, size_t errlen);
    /* After COMMIT of a transition whose hook wrote a flag of store_id. */
    void (*committed)(void *ctx, const char *store_id);
    void *ctx;
} pe_changeset_flag_hooks_t;

typedef struct pe_flags pe_flags_t; /* pe/flags.h */

/* The hooks that write the flag through pe/flags.h's _tx calls on the transition's connection
 * and publish it with pe_flags_publish after COMMIT (src/changeset/flag_hooks.c; the mapping
 * from actionPlan to the flag is documented there and in README "ChangeSets"). flags is
 * borrowed and must outlive the service. Pure. */
pe_changeset_flag_hooks_t pe_changeset_flag_hooks(pe_flags_t *flags);
/* The key of the flag a ChangeSet drives: actionPlan.implementation.featureFlagKey, else
 * "changeset-<id>". Pure, thread-safe. */
void pe_changeset_flag_key(const cJSON *changeset, const char *id,
                           char out[PE_CHANGESET_FLAG_KEY_MAX]);
/* The flag definition (the body pe_flags_put_tx takes) for changeset id: on approval
 * (winner NULL) control/treatment from actionPlan with its rollout strategy, and
 * actionPlan.targetSegment as a filter rule (only the segment enters the experiment); for
 * PERMANENT (winner "treatment" or "control") the winner alone, or over a segment control 0 /
 * treatment 100 with the segment as an override then a filter. PE_EINVAL also for a segment the
 * flag cannot target (the message names actionPlan.targetSegment.rules[j]). Returns 0 and *def
 * (caller deletes), PE_EINVAL with a message naming the ChangeSet field in err, or PE_ENOMEM. Pure,
 * thread-safe. */
int pe_changeset_flag_definition(const cJSON *changeset, const char *id, const char *winner,
                                 cJSON **def, char *err, size_t errlen);

/* One outbox row as a notifier sees it. Everything is borrowed for the duration of the call. */
typedef struct {
    const char *store_id;
    const char *outbox_id;    /* decimal; the same on every retry: the receiver's idempotency key */
    const char *kind;         /* "changeset.approved", … */
    const char *changeset_id; /* NULL when the notification is about no ChangeSet */
    const cJSON *payload;     /* {"kind","storeId","changesetId","title","from","to","reason",
                                 "occurredAt","actor":{"type","id"}} */
    const char *body;         /* payload as JSON text, exactly as stored (what a webhook posts) */
    int attempt;              /* 1 on the first try of this row */
    pe_db_conn_t *conn;       /* the dispatcher's connection, inside the row's transaction and a
                                 savepoint of this call: statements commit with the row's new
                                 delivery state, and are rolled back when deliver fails */
} pe_changeset_notification_t;

/* A notifier (the extension point behind include/profit_engine.h). The dispatcher calls deliver
 * once per outbox row until it returns 0; a row is retried with backoff, and on a retry only the
 * notifiers that have not succeeded yet are called again (at-least-once: a crash between a
 * success and the commit repeats it). deliver returns 0 or a PE_E… code with err filled; it runs
 * on the dispatcher's thread, one row at a time, and must not keep the pointers it is given.
 * name: 1..32 of [a-z0-9_.-], unique within a service; it is recorded in the outbox row. */
typedef struct {
    const char *name;
    int (*deliver)(void *ctx, const pe_changeset_notification_t *n, char *err, size_t errlen);
    void *ctx;
} pe_changeset_notifier_t;

#define PE_CHANGESET_MAX_NOTIFIERS 16 /* built-ins included */

/* ---- the service ----------------------------------------------------------------------------- */

typedef struct pe_guardrail_check pe_guardrail_check_t; /* pe/guardrails.h */

typedef struct {
    pe_db_pool_t *db;
    unsigned approval_timeout_s;                     /* PENDING_APPROVAL lifetime; 0 = 7 days */
    pe_changeset_flag_hooks_t flags;                 /* copied; all NULL = no flag side effects */
    const pe_guardrail_check_t *const *extra_checks; /* NULL-terminated, may be NULL */
    const char *webhook_url;                         /* NULL: no webhooks */
    const char *webhook_secret;                      /* HMAC-SHA256 key for webhooks */
    /* NULL-terminated, may be NULL: notifiers called after the built-ins ("in_app", then
     * "webhook" when webhook_url is set). Borrowed: they must outlive the service. */
    const pe_changeset_notifier_t *const *notifiers;
    /* The clock of every instant the service records (approvedAt, startedAt, endedAt,
     * expiresAt, the audit events' times), Unix µs; NULL = the wall clock. `serve` never sets
     * it: the closed-loop simulation does, so a ChangeSet approved on a simulated day starts
     * on that day. */
    int64_t (*clock)(void *clock_ctx);
    void *clock_ctx;
} pe_changeset_config_t;

typedef struct pe_changeset_service pe_changeset_service_t;

/* Returns a service (copies cfg, borrows cfg->db, the checks and the notifiers), or NULL on
 * ENOMEM or an invalid notifier (bad or duplicate name, no deliver, more than
 * PE_CHANGESET_MAX_NOTIFIERS in all). Registers the built-in notifiers through the same list
 * extensions use. Thread-safe afterwards. */
pe_changeset_service_t *pe_changeset_service_new(const pe_changeset_config_t *cfg);
void pe_changeset_service_free(pe_changeset_service_t *svc);
/* The custom guardrail checks the service runs (cfg.extra_checks; NULL when none): what a
 * preview of new guardrails must run too. */
const pe_guardrail_check_t *const *pe_changeset_extra_checks(const pe_changeset_service_t *svc);

/* Who acts. */
typedef struct {
    pe_changeset_actor_t kind;
    const char *audit_type; /* "user" | "system" | "autopilot" */
    const char *id;         /* user id, "secret_key", "scheduler", … */
} pe_changeset_actor_info_t;

/* The outcome of a refused operation, for the HTTP answer: code + message, and for guardrail
 * blocks the list of violation sentences (a JSON array, owned by the struct; free with
 * pe_changeset_result_free). */
typedef struct {
    pe_refusal_t refusal; /* code empty when the failure is a plain PE_E… code */
    cJSON *violations;
    int64_t version; /* the current version (stale writes) */
} pe_changeset_result_t;

void pe_changeset_result_free(pe_changeset_result_t *r);

/* Creates a ChangeSet from a client document (validated in PE_CHANGESET_CLIENT mode; the server
 * fields are replaced). Returns 0 and *out (the stored document, caller deletes), PE_EINVAL (*res
 * names the path), PE_ENOTFOUND (no such store) or a database error. */
int pe_changeset_create(pe_changeset_service_t *svc, const char *store_id, const cJSON *doc,
                        const pe_changeset_actor_info_t *actor, cJSON **out,
                        pe_changeset_result_t *res);
/* The stored document with its audit trail. PE_ENOTFOUND for another store's or no ChangeSet. */
int pe_changeset_get(pe_changeset_service_t *svc, const char *store_id, const char *id,
                     cJSON **out);

typedef struct {
    const char *status; /* a state name or NULL */
    const char *after;  /* the previous page's nextAfter, or NULL */
    unsigned limit;     /* 1..200, 0 = 50 */
    bool full;          /* whole documents (without auditTrail) instead of summaries */
} pe_changeset_query_t;

/* {"changesets":[…],"nextAfter":…|null}, newest first. Each item is a summary (id, version,
 * status, approvalStatus, riskLevel, actionType, problem, expectedOutcome, createdAt, updatedAt,
 * expiresAt) or, with q->full, the stored document as GET returns it minus auditTrail (a list
 * stays bounded; the trail is at …/timeline). PE_EINVAL for a bad status or cursor. */
int pe_changeset_list(pe_changeset_service_t *svc, const char *store_id,
                      const pe_changeset_query_t *q, cJSON **out, pe_changeset_result_t *res);
/* Replaces the client-owned sections (hypothesis, actionPlan, guardrails, rollbackPlan,
 * proofPlan; a partial patch of top-level sections) while DRAFT, checking expected_version.
 * PE_ECONFLICT (stale version or not a draft, *res says which), PE_EINVAL, PE_ENOTFOUND. */
int pe_changeset_patch(pe_changeset_service_t *svc, const char *store_id, const char *id,
                       int64_t expected_version, const cJSON *patch,
                       const pe_changeset_actor_info_t *actor, cJSON **out,
                       pe_changeset_result_t *res);

typedef struct {
    const char *to;               /* target state name */
    const char *reason;           /* may be NULL */
    bool confirm;                 /* explicit merchant confirmation */
    bool force;                   /* override guardrail violations (needs confirm) */
    int64_t expected_version;     /* < 0: no check */
    const cJSON *proof_result;    /* optional execution.proofResult to record (→ PROVEN) */
    const cJSON *current_metrics; /* optional execution.currentMetrics to record */
    /* Optional: the caller's own writes in the transition's transaction (the measure job's
     * experiment_results row), run on conn after the audit event and the outbox row, before
     * COMMIT, with changeset the document as stored (borrowed). A non-zero return (a PE_E…
     * code) rolls the whole transition back and is returned. NULL: nothing more. */
    int (*in_transaction)(void *ctx, pe_db_conn_t *conn, const char *store_id, const char *id,
                          const cJSON *changeset);
    void *in_transaction_ctx;
} pe_changeset_transition_req_t;

/* Runs one transition (see lifecycle.c for the table). Returns 0 and *out, or PE_ECONFLICT
 * (not allowed from the current state, stale version, guardrails blocked, confirmation
 * missing: res->refusal.code is invalid_transition | stale_version | guardrail_violation |
 * confirmation_required), PE_EFORBIDDEN (actor may not trigger it), PE_EINVAL, PE_ENOTFOUND. */
int pe_changeset_transition(pe_changeset_service_t *svc, const char *store_id, const char *id,
                            const pe_changeset_transition_req_t *req,
                            const pe_changeset_actor_info_t *actor, cJSON **out,
                            pe_changeset_result_t *res);

/* Alerts the merchant about a ChangeSet without moving it (the measure job's "sample-ratio
 * mismatch: automatic decisions frozen"): one notification of kind (e.g.
 * "changeset.srm_mismatch"; "from" and "to" are its current state) through the outbox, so
 * in-app, webhook and the extensions get it like a transition's. At most once per ChangeSet and
 * kind: *queued says whether this call queued it. Returns 0, PE_ENOTFOUND (no such ChangeSet in
 * the store) or a database error. Thread-safe. */
int pe_changeset_alert(pe_changeset_service_t *svc, const char *store_id, const char *id,
                       const char *kind, const char *title, const char *reason,
                       const pe_changeset_actor_info_t *actor, bool *queued);

/* Archives every PENDING_APPROVAL ChangeSet whose approval expired by the service's clock
 * (approval.status expired), each in its own transaction: of store_id, or of every store when it
 * is NULL (the serve job; the closed-loop simulation expires its own store's at its simulated
 * times). *count = how many. Safe on several instances (row locks). */
int pe_changeset_expire_due(pe_changeset_service_t *svc, const char *store_id, size_t *count);

/* The audit events of one ChangeSet, oldest first: {"events":[AuditEvent…]}. */
int pe_changeset_timeline(pe_changeset_service_t *svc, const char *store_id, const char *id,
                          cJSON **out);

/* Recomputes every chain (of one store when store_id is non-NULL). *out =
 * {"ok":bool,"checked":N,"firstBroken":null|{"changesetId","seq","eventId","reason"}}. */
int pe_changeset_audit_verify(pe_db_pool_t *db, const char *store_id, cJSON **out);

/* ---- audit export (streamed, keyset-paginated) --------------------------------------------------
 */

typedef struct pe_changeset_audit_export pe_changeset_audit_export_t;

#define PE_AUDIT_UNBOUNDED INT64_MIN /* from_us / to_us: no bound on that side */

/* An export of store_id's events with from_us <= timestamp < to_us (either PE_AUDIT_UNBOUNDED),
 * as "csv" or "json". Holds no connection between reads; memory is bounded by one page. */
pe_changeset_audit_export_t *pe_changeset_audit_export_new(pe_db_pool_t *db, const char *store_id,
                                                           bool csv, int64_t from_us,
                                                           int64_t to_us);
/* Copies up to max bytes of the next part into buf. Returns bytes (> 0), 0 at the end, or a
 * negative PE_E… code. Not thread-safe (one reader at a time). */
long pe_changeset_audit_export_read(pe_changeset_audit_export_t *x, char *buf, size_t max);
void pe_changeset_audit_export_free(pe_changeset_audit_export_t *x);
/* Appends s as one RFC 4180 CSV cell: quoted when needed, and a cell a spreadsheet could run
 * as a formula (= + - @ | first after any leading whitespace, in ASCII or full width; or a
 * leading tab / CR) prefixed with ' . Returns 0 or PE_ENOMEM. Pure. */
int pe_changeset_csv_cell(pe_buf_t *b, const char *s);

/* ---- notifications ----------------------------------------------------------------------------
 */

/* Delivers due outbox rows, each in its own transaction, to every registered notifier in
 * order: "in_app" (a row in notifications, idempotent per outbox row), "webhook" when configured
 * (POST of the payload signed "X-PE-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." +
 * body)>", "X-PE-Delivery: <outbox id>"), then the extensions. A failed notifier is retried with
 * exponential backoff (30 s, 60 s, … capped at 1 h) for 12 attempts; then the row is abandoned
 * (abandoned_at, never marked delivered). A row is marked delivered only after every notifier
 * succeeded, so a crash loses nothing (at-least-once). *count = rows fully delivered. Safe on
 * several instances (SKIP LOCKED). */
int pe_changeset_dispatch(pe_changeset_service_t *svc, size_t *count, char *err, size_t errlen);

/* ---- in-app notifications -------------------------------------------------------------------- */

typedef struct {
    bool unread_only;
    const char *cursor; /* the previous page's nextCursor, or NULL */
    unsigned limit;     /* 1..100, 0 = 20 */
} pe_notification_query_t;

/* {"notifications":[{"id","kind","changesetId","title","body","createdAt","readAt"}…],
 *  "nextCursor":"…"|null,"unreadCount":N}, newest first (keyset on id). Returns 0 and *out
 * (caller deletes), PE_EINVAL (res names the parameter) or a database error. Thread-safe. */
int pe_changeset_notifications_list(pe_changeset_service_t *svc, const char *store_id,
                                    const pe_notification_query_t *q, cJSON **out,
                                    pe_changeset_result_t *res);
/* Marks one of store_id's notifications read (idempotent: the first readAt stays) and returns it
 * in *out (caller deletes). PE_EINVAL (id is not a positive integer; res names it),
 * PE_ENOTFOUND (no such notification in this store) or a database error. Thread-safe. */
int pe_changeset_notification_read(pe_changeset_service_t *svc, const char *store_id,
                                   const char *id, cJSON **out, pe_changeset_result_t *res);

#endif /* PE_CHANGESET_H */
