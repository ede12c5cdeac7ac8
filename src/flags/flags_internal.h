/*
 * flags_internal.h — the compiled form of flags, private to src/flags/: what engine.c builds
 * from a store's flag-set JSON and what evaluation reads.
 *
 * Invariants:
 *  1. A compiled set is written only while it is built (pe_flags_set_from_json) and read-only
 *     after its first pe_flags_set_ref/handout; every string it points to lives in its arena.
 *  2. flags[] is sorted by key (strcmp), so lookups are binary searches.
 *  3. variants[i].cum is weight_0 + … + weight_i; the last one is 100.
 *  4. A quarantined flag (its stored definition failed to validate or compile) has a key, a
 *     reason and nothing else: no variants (default_variant -1, single -1), not enabled.
 *     Evaluation answers it as an error before reading anything else.
 */
#ifndef PE_FLAGS_INTERNAL_H
#define PE_FLAGS_INTERNAL_H

#include <stdatomic.h>

#include "pe/flags.h"

typedef enum {
    ATTR_DEVICE = 0,
    ATTR_COUNTRY,
    ATTR_CUSTOMER,
    ATTR_PATH,
    ATTR_CUSTOM,
} flag_attr_t;

typedef enum {
    OP_IN = 0,
    OP_NOT_IN,
    OP_STARTS_WITH,
    OP_CONTAINS,
    OP_GT,
    OP_GTE,
    OP_LT,
    OP_LTE,
} flag_op_t;

typedef struct {
    flag_attr_t attr;
    flag_op_t op;
    const char *custom_name; /* ATTR_CUSTOM */
    size_t nvalues;
    const char **values; /* string operators */
    double number;       /* numeric operators */
} flag_condition_t;

typedef struct {
    size_t nconditions;
    flag_condition_t *conditions;
    int variant; /* -1: a filter rule (matching units go on to the split) */
} flag_rule_t;

typedef struct {
    const char *key;
    const char *value; /* compact JSON */
    size_t value_len;
    unsigned weight;
    unsigned cum; /* invariant 3 */
} flag_variant_t;

struct pe_flag {
    const char *key;
    pe_flag_kind_t kind;
    bool enabled;
    unsigned rollout;
    const char *salt;
    uint64_t version;
    int default_variant;
    size_t nvariants;
    flag_variant_t *variants;
    size_t nrules;
    flag_rule_t *rules;
    bool has_filters;       /* some rule has no variant */
    int single;             /* the variant with weight 100, or -1 */
    const char *quarantine; /* invariant 4: why the flag is quarantined, or NULL */
};

/* A flag of the set's JSON that was quarantined (served as an error) or, without a usable key,
 * dropped: what the operator is told (cache.c logs it once per load; /metrics counts it). */
typedef struct {
    const char *key; /* "?" when the flag had no usable key (dropped) */
    const char *why;
} flag_quarantine_t;

struct pe_flag_set {
    _Atomic long refs;
    char store_id[64];
    uint64_t version;
    unsigned holdout_pct;
    const char *holdout_salt;
    size_t nflags;
    struct pe_flag *flags; /* invariant 2 */
    size_t nquarantined;
    flag_quarantine_t *quarantined; /* in the order of the JSON */
    char *json;
    size_t json_len;
    /* the arena every string and array above points into: a list of chunks */
    struct flag_chunk *chunks;
};

/* ---- the service (cache.c, store.c, exposure.c) ----------------------------------------- */

#include <pthread.h>

#define FLAGS_DEDUPE_SLOTS (1u << 18) /* 2 MiB of exposure fingerprints */

typedef struct {
    char store_id[64];
    pe_flag_set_t *set;    /* guarded by pe_flags.lock: swap under the write lock */
    _Atomic uint64_t want; /* a version announced (pub/sub, poll) but maybe not loaded */
    atomic_bool force;     /* reload even at the same version (resynchronisation) */
} flags_entry_t;

struct pe_flags {
    pe_db_pool_t *db;
    pe_redis_t *redis;
    pe_collector_t *collector;
    unsigned poll_ms;
    pthread_rwlock_t lock; /* the map below; evaluations hold it only to take a reference */
    flags_entry_t **slots; /* open addressing by store id */
    size_t nslots, nentries;
    /* the refresher thread */
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    bool wake, stopping, started;
    pthread_t refresher;
    pe_redis_subscriber_t *sub;
    /* exposures: direct-mapped fingerprints (0 = empty), lock-free */
    _Atomic uint64_t *dedupe;
    /* counters for /metrics */
    _Atomic uint64_t loads_redis, loads_pg, load_failures, publishes, publish_failures,
        invalidations, resyncs, polls, poll_failures, exp_sent, exp_deduped, exp_dropped,
        exp_stored, exp_failed, exp_skipped, evaluations;
};

/* Loads the store's set: Redis first (when allowed and at least min_version), else PostgreSQL
 * (and then writes it back to Redis). Returns 0 with *out (a reference), or a PE_E… code. */
int flags_load(pe_flags_t *f, const char *store_id, uint64_t min_version, bool use_redis,
               pe_flag_set_t **out);
/* The store's set JSON from PostgreSQL (malloc'ed). PE_ENOTFOUND: no such store. */
int flags_load_pg_json(pe_flags_t *f, const char *store_id, char **json, size_t *len);
/* Installs set as the store's copy unless a newer one is there; returns a new reference to
 * whichever copy is current. Takes ownership of set's reference. */
pe_flag_set_t *flags_install(pe_flags_t *f, const char *store_id, pe_flag_set_t *set);
/* After a committed change: PostgreSQL → Redis (SET + PUBLISH) → this process. */
void flags_propagate(pe_flags_t *f, const char *store_id);
/* Redis key of a store's set, "pe:{<storeId>}:flags". */
int flags_redis_key(const char *store_id, char *out, size_t outlen);

/* Logs one error line per quarantined flag of set (store, key, why). cache.c calls it when it
 * installs a set, so a bad flag is reported once per load, not on every poll. */
void flags_log_quarantine(const pe_flag_set_t *set);

/* [a-z0-9][a-z0-9._-]{0,PE_FLAGS_KEY_MAX-1}: the syntax of a flag key. */
bool flags_key_valid(const char *s);

/* Attribute and operator names, as the JSON spells them. */
const char *flags_attr_name(flag_attr_t a);
const char *flags_op_name(flag_op_t o);
int flags_op_parse(const char *s, flag_op_t *out);

#endif /* PE_FLAGS_INTERNAL_H */
