/*
 * select.c — which background jobs this `serve` runs (PE_JOBS): every job, none, or a list.
 *
 * Why: in the scale-out layout (README) ingest nodes answer the storefronts and one node runs
 * the jobs, so aggregation never takes CPU from the collector; jobs that must run once across
 * instances take their own advisory locks anyway (jobs.h invariant 1).
 *
 * Invariants:
 *  1. The spec is "all", "none", or job names separated by commas (spaces around names are
 *     ignored); anything else — an unknown name, an empty name, "all" mixed with names — is
 *     refused with a message that names the offending part. Nothing is guessed.
 *  2. The selected jobs keep the order of the table they came from.
 */
#include <stdio.h>
#include <string.h>

#include "pe/jobs.h"

#define NAME_MAX_LEN 64

/* Copies the token [s, end) without surrounding spaces into out (cut at NAME_MAX_LEN bytes);
 * returns its whole length, so a longer token is never mistaken for a job's name. */
static size_t token(const char *s, const char *end, char out[NAME_MAX_LEN + 1])
{
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    size_t n = (size_t)(end - s), keep = n < NAME_MAX_LEN ? n : NAME_MAX_LEN;
    memcpy(out, s, keep);
    out[keep] = '\0';
    return n;
}

static const pe_job_t *find(const pe_job_t *jobs, size_t njobs, const char *name)
{
    for (size_t i = 0; i < njobs; i++)
        if (strcmp(jobs[i].name, name) == 0)
            return &jobs[i];
    return NULL;
}

int pe_jobs_select(const char *spec, const pe_job_t *jobs, size_t njobs, pe_job_t *out,
                   size_t *nout, char *err, size_t errlen)
{
    *nout = 0;
    char name[NAME_MAX_LEN + 1];
    const char *s = spec ? spec : "all";
    const char *comma = strchr(s, ',');
    size_t n = token(s, comma ? comma : s + strlen(s), name);
    if (!comma && (strcmp(name, "all") == 0 || strcmp(name, "none") == 0)) {
        if (strcmp(name, "all") == 0) {
            memcpy(out, jobs, njobs * sizeof *jobs);
            *nout = njobs;
        }
        return 0;
    }
    bool chosen[64] = {false};
    if (njobs > PE_ARRAY_LEN(chosen)) {
        snprintf(err, errlen, "PE_JOBS: more jobs than can be selected");
        return PE_EINVAL;
    }
    for (;;) {
        const char *end = comma ? comma : s + strlen(s);
        n = token(s, end, name);
        const pe_job_t *job = n <= NAME_MAX_LEN && n > 0 ? find(jobs, njobs, name) : NULL;
        if (!job) {
            int off =
                snprintf(err, errlen, "PE_JOBS: '%s' is not a job (all, none, or a list of", name);
            for (size_t i = 0; i < njobs && off > 0 && (size_t)off < errlen; i++)
                off +=
                    snprintf(err + off, errlen - (size_t)off, "%s %s", i ? "," : "", jobs[i].name);
            if (off > 0 && (size_t)off < errlen)
                snprintf(err + off, errlen - (size_t)off, ")");
            return PE_EINVAL;
        }
        chosen[job - jobs] = true;
        if (!comma)
            break;
        s = comma + 1;
        comma = strchr(s, ',');
    }
    for (size_t i = 0; i < njobs; i++)
        if (chosen[i])
            out[(*nout)++] = jobs[i];
    return 0;
}
