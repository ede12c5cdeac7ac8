/*
 * pe/jobs.h — the scheduler inside `serve`: periodic background jobs (partition maintenance
 * now; aggregation and the autopilot loop later) run on one thread, each at its interval.
 *
 * Invariants:
 *  1. A job that must run once across instances takes its own PostgreSQL advisory lock; the
 *     scheduler only times them, so N servers each run the scheduler safely.
 *  2. Stopping wakes the thread at once; no job starts after it. pe_jobs_scheduler_stop waits
 *     for the job in progress to return; pe_jobs_scheduler_stop_within waits at most a deadline
 *     and then says which job is still running, for `serve` to leave it behind: every job works
 *     in PostgreSQL transactions, which roll back when the process's connections close.
 */
#ifndef PE_JOBS_H
#define PE_JOBS_H

#include "pe/core.h"

typedef struct pe_jobs_scheduler pe_jobs_scheduler_t;

typedef struct {
    const char *name;
    unsigned interval_s;
    unsigned first_delay_s; /* after start */
    /* Runs the job; returns 0 or a PE_E… code (logged). */
    int (*run)(void *arg, char *err, size_t errlen);
    void *arg;
} pe_job_t;

/* Starts a scheduler thread for the jobs (copied). Returns NULL on ENOMEM or thread failure. */
pe_jobs_scheduler_t *pe_jobs_scheduler_start(const pe_job_t *jobs, size_t njobs);
/* Stops the thread (waits for a running job) and frees. Accepts NULL. */
void pe_jobs_scheduler_stop(pe_jobs_scheduler_t *s);
/* No job starts from now on; the one running goes on. Accepts NULL. */
void pe_jobs_scheduler_request_stop(pe_jobs_scheduler_t *s);
/* Stops the thread and frees, waiting at most timeout_ms for the job in progress: 0, or
 * PE_ETIMEOUT with that job's name in running (the scheduler is then left as it is: the caller
 * is ending the process). Accepts NULL (0). */
int pe_jobs_scheduler_stop_within(pe_jobs_scheduler_t *s, int timeout_ms, char *running,
                                  size_t running_len);

/* The jobs of the table that PE_JOBS selects (src/jobs/select.c): spec "all" (or NULL),
 * "none", or names separated by commas. out has room for njobs; *nout is how many were chosen,
 * in table order. Returns 0, or PE_EINVAL with a one-line message naming PE_JOBS in err. */
int pe_jobs_select(const char *spec, const pe_job_t *jobs, size_t njobs, pe_job_t *out,
                   size_t *nout, char *err, size_t errlen);

#endif /* PE_JOBS_H */
