/*
 * experiments_internal.h — what the files of src/experiments/ share (not part of
 * pe/experiments.h): the arms of a running experiment from its per-unit table (units.c), the
 * plan's durations (results.c).
 *
 * Invariants:
 *  1. The result has the columns of results.c's SQL_ARMS, in the same order, so one parser
 *     reads both.
 */
#ifndef PE_EXPERIMENTS_INTERNAL_H
#define PE_EXPERIMENTS_INTERNAL_H

#include <stdbool.h>

#include "pe/db.h"
#include "pe/stats.h"

/* pe_db_exec with nested loops off for this one statement, for a read of one store's experiment
 * or holdout out of the rollups: hash joins, linear in the store's rows whatever the planner's
 * statistics say. A store they have not counted yet (a first roll-up of a few visitors, then
 * thousands more: autovacuum analyses a table after a tenth of it changed) is one row to the
 * planner, which then nests loops that rebuild an aggregate once per session: 12,000 units took
 * 27 s and hit the 30 s statement timeout (a 503 on a new store's results), 0.1 s hashed. */
int experiments_exec_hashed(pe_db_conn_t *conn, const char *sql, int nparams,
                            const char *const *params, pe_db_result_t **out);

/* The arms of ChangeSet changeset_id (refreshed by the caller): kept (experiment_arms) when
 * from is NULL, else over its units first exposed from `from` on (RFC 3339). Returns 0 and
 * *out (caller frees), PE_ENOTFOUND when the experiment has no unit table (not running, or
 * not refreshed), or a database error. Thread-safe. */
int pe_experiments_units_arms(pe_db_pool_t *db, const char *store_id, const char *changeset_id,
                              const char *from, pe_db_result_t **out);

/* Revenue and gross profit per visitor of each arm (PE_EXPERIMENTS_CONTROL, _TREATMENT) of the
 * experiment on flag_key that started at `started`: its units first exposed from then until
 * `until` (both timestamptz text), intention to treat, store holdout excluded, each with its
 * sessions from its first exposure until `until` — results.c's units and outcomes, on conn.
 * Returns 0 or a database error. */
int pe_experiments_money_arms(pe_db_conn_t *conn, const char *store_id, const char *flag_key,
                              const char *started, const char *until, pe_stats_arm_t revenue[2],
                              pe_stats_arm_t profit[2]);

/* Days of an ISO 8601 duration of one unit: days or weeks ("P14D", "P2W"), or with `time`
 * hours or minutes ("PT12H", "PT30M"); NaN otherwise (NULL included). Pure (results.c). */
double pe_experiments_duration_days(const char *s, bool time);

#endif /* PE_EXPERIMENTS_INTERNAL_H */
