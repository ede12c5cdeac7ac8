/*
 * pe/flags.h — feature flags (story 8.9): the flag model and its validator, the compiled
 * per-store flag set, deterministic evaluation, the PostgreSQL → Redis → in-process read path,
 * the merchant's changes, and exposure events.
 *
 * Bucketing (published in README.md, "Feature flags", with test vectors, so any SDK can
 * reproduce an assignment):
 *
 *   d        = SHA-256(UTF-8(salt ":" unitId))            unitId = the OFREP targetingKey
 *   variantU = big-endian uint32 of d[0..3]               each uniform on [0, 2^32)
 *   rolloutU = big-endian uint32 of d[4..7]
 *   in rollout     ⇔  rolloutU · 100 < rollout · 2^32     (rollout: integer 0..100)
 *   variant        =  the first i with variantU · 100 < (weight_0 + … + weight_i) · 2^32
 *   store holdout  ⇔  holdoutU · 100 < holdout · 2^32, holdoutU = d'[0..3] of
 *                     SHA-256(holdoutSalt ":" unitId), holdout: integer 0..50 (default 5)
 *
 * Evaluation order: quarantined (its stored definition did not compile) → ERROR, GENERAL (no
 * variant: the client uses its default); disabled → DISABLED (default variant); a matching
 * override rule → TARGETING_MATCH; filter rules that exist but do not match → DEFAULT; an
 * autopilot flag and a unit in the store's holdout → DEFAULT (metadata holdout); outside the
 * rollout → DEFAULT; otherwise the weighted variant → SPLIT.
 *
 * Invariants:
 *  1. Validation and evaluation are pure, allocation-free on the evaluation side, and
 *     thread-safe; the same (flag, unit, context) always gives the same answer.
 *  2. A compiled pe_flag_set_t is immutable and reference-counted: a refresh builds a new set
 *     and swaps a pointer; an evaluation holding a reference never waits for a refresh.
 *  3. Raising the rollout never moves a unit out (rolloutU does not depend on the rollout), and
 *     the variant does not depend on the rollout (variantU is independent of rolloutU).
 *  4. Every read and write is scoped to one store; a flag set holds exactly one store's flags.
 */
#ifndef PE_FLAGS_H
#define PE_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pe/collector.h"
#include "pe/core.h"
#include "pe/db.h"
#include "pe/redis.h"

/* ---- limits ------------------------------------------------------------------------------- */

#define PE_FLAGS_KEY_MAX           128 /* flag keys: [a-z0-9][a-z0-9._-]{0,127} */
#define PE_FLAGS_VARIANT_KEY_MAX   64  /* variant keys: the same syntax, ≤ 64 bytes */
#define PE_FLAGS_MAX_VARIANTS      20
#define PE_FLAGS_MAX_RULES         50
#define PE_FLAGS_MAX_CONDITIONS    10  /* per rule */
#define PE_FLAGS_MAX_VALUES        100 /* per condition */
#define PE_FLAGS_VALUE_MAX_BYTES   4096
#define PE_FLAGS_VALUE_MAX_DEPTH   32 /* a variant value nests at most 32 levels (itself: 1) */
#define PE_FLAGS_DESCRIPTION_MAX   500
#define PE_FLAGS_SALT_MAX          64
#define PE_FLAGS_MAX_PER_STORE     1000
#define PE_FLAGS_TARGETING_KEY_MAX 256
#define PE_FLAGS_CONTEXT_MAX_ATTRS 64
#define PE_FLAGS_HOLDOUT_DEFAULT   5
#define PE_FLAGS_HOLDOUT_MAX       50
#define PE_FLAGS_MAX_BODY          (256 * 1024)

/* Redis: the compiled set of store S lives at "pe:{S}:flags"; changes are announced on this
 * channel as "<storeId> <version>". */
#define PE_FLAGS_CHANNEL "pe:flags:invalidate"

/* ---- the model ---------------------------------------------------------------------------- */

typedef enum {
    PE_FLAG_KIND_RELEASE = 0, /* a plain switch or rollout: no exposures */
    PE_FLAG_KIND_EXPERIMENT,  /* an A/B test: exposures recorded */
    PE_FLAG_KIND_AUTOPILOT,   /* run by Autopilot: exposures, and the store holdout applies */
} pe_flag_kind_t;

typedef enum {
    PE_FLAG_REASON_TARGETING_MATCH = 0,
    PE_FLAG_REASON_SPLIT,
    PE_FLAG_REASON_DISABLED,
    PE_FLAG_REASON_DEFAULT,
    PE_FLAG_REASON_STATIC, /* one variant at 100 %, rollout 100: nothing to decide */
    PE_FLAG_REASON_ERROR,
} pe_flag_reason_t;

/* Validation refusals (pe_refusal_t) name the field ("variants[1].weight: must be an integer
 * 0..100"). Codes: missing_field, invalid_type, out_of_range (also a number that is not finite:
 * "variants[0].value.n: must be a finite number …"), too_long, too_large (a value nested too
 * deep), unknown_field, invalid_format, duplicate, too_many. */

/* Validates a flag definition (the admin API's body) and returns its canonical form: an object
 * with exactly key, description, kind, enabled, rolloutPercentage, variants, defaultVariant,
 * rules (defaults filled in) plus salt when the input has one. Returns 0 with *canonical
 * (caller frees with cJSON_Delete), PE_EINVAL with *err, or PE_ENOMEM. Pure, thread-safe.
 * allow_extra: also accept "version" (an optimistic check the caller does) and "salt". */
int pe_flags_validate(const cJSON *def, bool allow_extra, cJSON **canonical, pe_refusal_t *err);

/* The store holdout setting body {"holdoutPercentage":N}. Returns 0 with *pct or PE_EINVAL. */
int pe_flags_validate_settings(const cJSON *body, int *pct, pe_refusal_t *err);

/* ---- the compiled set and evaluation ------------------------------------------------------ */

typedef struct pe_flag_set pe_flag_set_t;
typedef struct pe_flag pe_flag_t;

/* An evaluation context (borrowed strings; NULL = absent). Custom attributes are the context's
 * other top-level keys, read by rules as "custom.<name>". */
typedef struct {
    const char *targeting_key;
    const char *device;   /* desktop | mobile | tablet | other */
    const char *country;  /* ISO 3166-1 alpha-2 */
    const char *customer; /* new | returning */
    const char *path;     /* URL path */
    const char *session_id;
    size_t ncustom;
    const char *custom_names[PE_FLAGS_CONTEXT_MAX_ATTRS];
    const cJSON *custom_values[PE_FLAGS_CONTEXT_MAX_ATTRS]; /* string, number or boolean */
} pe_flag_context_t;

/* Reads an OFREP context object (may be NULL: an empty context) into *out, borrowing from it.
 * Returns 0, or PE_EINVAL with a message (INVALID_CONTEXT: a known attribute of the wrong type,
 * a targetingKey that is not a string of 1..256 bytes, too many attributes). Pure. */
int pe_flags_context_parse(const cJSON *context, pe_flag_context_t *out, char *err, size_t errlen);

typedef struct {
    const pe_flag_t *flag;
    pe_flag_reason_t reason;
    int variant;               /* index into the flag's variants; -1 with reason ERROR */
    bool holdout;              /* the unit is in the store holdout (autopilot flags) */
    bool exposure;             /* an exposure should be recorded (experiment/autopilot, bucketed) */
    const char *error_code;    /* with reason ERROR: "TARGETING_KEY_MISSING", or "GENERAL" for a
                                  quarantined flag (static strings, OFREP error codes) */
    const char *error_details; /* with reason ERROR: a static sentence for the client */
} pe_flag_eval_t;

/* Builds a set from its JSON form (what Redis holds: {"storeId","version","holdout":
 * {"percentage","salt"},"flags":[canonical flag + salt + version, …]}). Every flag is validated
 * again; one that fails is quarantined (kept by key, evaluated as ERROR "GENERAL", never as a
 * variant) or, without a usable key, dropped, and the rest of the set compiles as usual; so is
 * every copy of a key given twice. Returns NULL on ENOMEM or a broken envelope (not JSON;
 * storeId, version, holdout or the flags array missing or malformed; logged
 * "flags_set_invalid"). Refcount 1. Logs nothing about quarantined flags: the cache does, once
 * per set it installs. */
pe_flag_set_t *pe_flags_set_from_json(const char *json, size_t len);
/* How many flags of the set's JSON were quarantined or dropped (0 for a healthy set). */
size_t pe_flags_set_quarantined(const pe_flag_set_t *set);
/* Takes / drops a reference. Thread-safe. release accepts NULL and frees at zero. */
pe_flag_set_t *pe_flags_set_ref(pe_flag_set_t *set);
void pe_flags_set_release(pe_flag_set_t *set);
uint64_t pe_flags_set_version(const pe_flag_set_t *set);
const char *pe_flags_set_store(const pe_flag_set_t *set);
size_t pe_flags_set_count(const pe_flag_set_t *set);
const pe_flag_t *pe_flags_set_at(const pe_flag_set_t *set, size_t index); /* by key order */
/* The flag with that key, or NULL. O(log n). */
const pe_flag_t *pe_flags_set_find(const pe_flag_set_t *set, const char *key);
/* The JSON the set was built from (borrowed). */
const char *pe_flags_set_json(const pe_flag_set_t *set, size_t *len);

/* Evaluates one flag for a context. Pure, allocation-free, thread-safe. */
void pe_flags_evaluate(const pe_flag_set_t *set, const pe_flag_t *flag,
                       const pe_flag_context_t *ctx, pe_flag_eval_t *out);

const char *pe_flags_key(const pe_flag_t *f);
/* Why the flag is quarantined (its stored definition did not validate: "variants[0].value:
 * …"), borrowed from the set; NULL for a flag that compiled. A quarantined flag has no
 * variants. */
const char *pe_flags_quarantine(const pe_flag_t *f);
pe_flag_kind_t pe_flags_kind(const pe_flag_t *f);
const char *pe_flags_kind_name(pe_flag_kind_t k);
uint64_t pe_flags_version(const pe_flag_t *f);
/* A variant's key and its value as compact JSON text (borrowed from the set). */
const char *pe_flags_variant_key(const pe_flag_t *f, int index);
const char *pe_flags_variant_value(const pe_flag_t *f, int index, size_t *len);
const char *pe_flags_reason_name(pe_flag_reason_t r);

/* The bucketing primitives (see the top of this file). u = the big-endian uint32 at
 * SHA-256(salt ":" unit)[4*which]. Thread-safe. */
void pe_flags_hash(const char *salt, const char *unit, uint32_t out[2]);
bool pe_flags_in_percent(uint32_t u, unsigned percent);

/* ---- the service: cache, sync, changes, exposures ------------------------------------------ */

typedef struct pe_flags pe_flags_t;

typedef struct {
    pe_db_pool_t *db;
    pe_redis_t *redis;         /* commands (GET, SET, PUBLISH); may be NULL (no Redis) */
    const char *redis_url;     /* for the SUBSCRIBE connection; NULL = no subscriber */
    pe_collector_t *collector; /* exposures; NULL = none recorded */
    unsigned poll_ms;          /* PostgreSQL version poll (default 1000) */
    bool start_threads;        /* false: no subscriber, no poller (tests, commands) */
} pe_flags_config_t;

/* Starts the service (the subscriber and the poller threads when asked). Returns NULL on
 * ENOMEM or thread failure. */
pe_flags_t *pe_flags_new(const pe_flags_config_t *cfg);
/* Stops the threads and frees every cached set. Accepts NULL. */
void pe_flags_free(pe_flags_t *f);

/* The store's current set, a reference the caller releases (pe_flags_set_release). A warm
 * cache answers from memory (no I/O); a cold one loads from Redis, else PostgreSQL. Returns 0,
 * or PE_EUNAVAIL when neither can be read. Thread-safe. */
int pe_flags_acquire(pe_flags_t *f, const char *store_id, pe_flag_set_t **out);
/* Counts answered evaluations for /metrics. Thread-safe. */
void pe_flags_count(pe_flags_t *f, size_t evaluations);
/* The version of the store's cached set, or -1 when it is not cached (tests, metrics). */
int64_t pe_flags_cached_version(pe_flags_t *f, const char *store_id);

/* Records exposures for evals[0..n) of one request (only those with .exposure), deduped per
 * (store, flag, unit, UTC day) in memory and by a deterministic eventId in the collector.
 * Fire-and-forget: never blocks on PostgreSQL. Thread-safe. */
void pe_flags_record_exposures(pe_flags_t *f, const char *store_id, const pe_flag_context_t *ctx,
                               const pe_flag_eval_t *evals, size_t n);
/* The experiment.exposure.assigned event OFREP records for one evaluation at at_us (its
 * deterministic eventId included), for callers that stand in for a storefront (the closed-loop
 * simulation). session_id NULL = the unit. Returns a new object, NULL on ENOMEM. Pure. */
cJSON *pe_flags_exposure_event(const char *store_id, const char *flag_key, const char *variant,
                               bool holdout, const char *unit, const char *session_id,
                               int64_t at_us);
/* The deterministic eventId of an exposure (UUID text, 37 bytes). Pure. */
void pe_flags_exposure_id(const char *store_id, const char *flag_key, const char *unit, int64_t day,
                          char out[37]);

/* Who changed something, for the history ("secret_key", "user:<uuid>"). */
typedef struct {
    const char *actor;
} pe_flags_actor_t;

/* The merchant's operations. Bodies are validated here; on PE_EINVAL *err names the field.
 * Every change commits in PostgreSQL (flags + flag_changes + the store's version), then writes
 * the compiled set to Redis and publishes the invalidation (a Redis failure is logged and
 * counted; the poller repairs it), then refreshes this process's copy. *out (caller frees) is
 * the flag as the API shows it. Thread-safe. */
int pe_flags_list(pe_flags_t *f, const char *store_id, cJSON **out);
int pe_flags_get(pe_flags_t *f, const char *store_id, const char *key, cJSON **out);
int pe_flags_create(pe_flags_t *f, const char *store_id, const pe_flags_actor_t *who,
                    const cJSON *body, cJSON **out, pe_refusal_t *err);
/* partial: PATCH (top-level fields merged into the current definition) vs PUT (replace). A
 * "version" in the body must equal the current one (else PE_ECONFLICT). */
int pe_flags_update(pe_flags_t *f, const char *store_id, const char *key,
                    const pe_flags_actor_t *who, const cJSON *body, bool partial, cJSON **out,
                    pe_refusal_t *err);
int pe_flags_delete(pe_flags_t *f, const char *store_id, const char *key,
                    const pe_flags_actor_t *who);
int pe_flags_settings_get(pe_flags_t *f, const char *store_id, cJSON **out);
int pe_flags_settings_put(pe_flags_t *f, const char *store_id, const pe_flags_actor_t *who,
                          const cJSON *body, cJSON **out, pe_refusal_t *err);
/* The changes of one flag, newest first (at most 100). */
int pe_flags_history(pe_flags_t *f, const char *store_id, const char *key, cJSON **out);

/* ---- writes inside the caller's transaction ------------------------------------------------
 *
 * The same changes as pe_flags_update / a create-or-replace, through the same code (the flag
 * row, its flag_changes row, the bump of the store's flag_settings.version that takes the
 * store's row lock), but on conn, inside a transaction the caller opened and will COMMIT or
 * ROLLBACK: a flag change that must commit with something else (a ChangeSet transition). Nothing
 * is published: after its COMMIT the caller calls pe_flags_publish (after a ROLLBACK, nothing).
 * A failed statement leaves the caller's transaction aborted; the caller must roll back.
 * Returns 0 and *out (caller frees: the flag as the API shows it, with its new version),
 * PE_EINVAL (*err names the field), PE_ECONFLICT, PE_ENOTFOUND or a database error. Safe on
 * several threads as long as each passes its own connection. */

/* PATCH (partial) or PUT one flag by key. PE_ENOTFOUND: no flag has that key. */
int pe_flags_update_tx(pe_db_conn_t *conn, const char *store_id, const char *key,
                       const pe_flags_actor_t *who, const cJSON *body, bool partial, cJSON **out,
                       pe_refusal_t *err);
/* Creates the flag def describes, or — when a flag with def's key exists and is of kind
 * replaces_kind ("autopilot"; NULL: any) — replaces its definition (PUT), keeping its salt so
 * every unit keeps its bucket. An existing flag of another kind: PE_ECONFLICT, err->code
 * "conflict", and nothing is written. */
int pe_flags_put_tx(pe_db_conn_t *conn, const char *store_id, const pe_flags_actor_t *who,
                    const cJSON *def, const char *replaces_kind, cJSON **out, pe_refusal_t *err);
/* After the caller's COMMIT of _tx writes: writes the store's compiled set to Redis, publishes
 * the invalidation and refreshes this process's copy — what pe_flags_create does after its own
 * COMMIT. A Redis failure is logged and counted; every instance's PostgreSQL version poll
 * (≤ poll_ms) picks the change up. Thread-safe. */
void pe_flags_publish(pe_flags_t *f, const char *store_id);

/* Appends the Prometheus text of the flag counters. */
int pe_flags_metrics(pe_flags_t *f, pe_buf_t *out);

#endif /* PE_FLAGS_H */
