/*
 * micro.c — the collector's CPU per event on an HTTP thread, without HTTP or PostgreSQL: what
 * `POST /v1/events` does between reading the body and handing the job to the writer — parse the
 * JSON (pe_json_parse_arena, as the endpoint does), check the envelope, validate every event,
 * correct its clock skew and encode it as binary COPY rows (collector_job_build, the very code the
 * server runs), then free it all.
 *
 * usage: ingest_micro BODIES [repeats]   (built by CMake as target ingest_micro)
 *   BODIES: request bodies, one a line, as `loadgen --dump N` writes them (the bench's load)
 *   repeats: passes over the file (default 7); the fastest pass is reported, since this
 *   machine is shared and the least disturbed pass is the closest to the code's own cost.
 * Prints one JSON line: {"events":…,"parse_ns_per_event":…,"build_ns_per_event":…,
 * "total_ns_per_event":…,"copy_bytes_per_event":…} — this thread's CPU time per event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/collector_internal.h"
#include "pe/core.h"

#define STORE_ID "00000000-0000-4000-8000-000000000001"

typedef struct {
    char *data;
    size_t len;
} body_t;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static body_t *read_bodies(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    body_t *bodies = NULL;
    size_t cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    *n = 0;
    if (!f)
        return NULL;
    while ((len = getline(&line, &linecap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            body_t *grown = realloc(bodies, cap * sizeof *grown);
            if (!grown)
                break;
            bodies = grown;
        }
        bodies[*n].data = strdup(line);
        bodies[*n].len = (size_t)len;
        if (!bodies[*n].data)
            break;
        (*n)++;
    }
    free(line);
    fclose(f);
    return bodies;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ingest_micro BODIES [repeats]\n");
        return 2;
    }
    int repeats = argc > 2 ? atoi(argv[2]) : 7;
    size_t nbodies = 0;
    body_t *bodies = read_bodies(argv[1], &nbodies);
    if (!bodies || nbodies == 0) {
        fprintf(stderr, "ingest_micro: no request bodies in %s\n", argv[1]);
        return 1;
    }
    int64_t best_parse = INT64_MAX, best_build = INT64_MAX, best_total = INT64_MAX;
    size_t events = 0, copy_bytes = 0;
    for (int r = 0; r < (repeats > 0 ? repeats : 1); r++) {
        int64_t parse_ns = 0, build_ns = 0;
        events = copy_bytes = 0;
        int64_t t_start = thread_cpu_ns();
        for (size_t i = 0; i < nbodies; i++) {
            char err[256];
            cJSON *body = NULL;
            pe_json_arena_t *arena = NULL;
            int64_t t0 = thread_cpu_ns();
            if (pe_json_parse_arena(bodies[i].data, bodies[i].len, &arena, &body, err,
                                    sizeof err) != 0) {
                fprintf(stderr, "ingest_micro: body %zu: %s\n", i, err);
                return 1;
            }
            int64_t t1 = thread_cpu_ns();
            const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "events");
            const cJSON *sent = cJSON_GetObjectItemCaseSensitive(body, "sentAt");
            int64_t sent_at = 0;
            if (cJSON_IsString(sent))
                pe_time_parse_rfc3339(sent->valuestring, &sent_at);
            collector_job_t *job = NULL;
            int rc = collector_job_build(STORE_ID, PE_COLLECTOR_LIVE, 400, list, sent_at,
                                         sent_at + 50000, &job);
            if (rc != 0 || job->nrejects) {
                fprintf(stderr, "ingest_micro: body %zu: %s, %zu rejected\n", i, pe_strerror(rc),
                        job ? job->nrejects : 0);
                return 1;
            }
            events += job->nevents;
            copy_bytes += job->events_copy.len;
            collector_job_free(job);
            pe_json_arena_free(arena);
            int64_t t2 = thread_cpu_ns();
            parse_ns += t1 - t0;
            build_ns += t2 - t1;
        }
        int64_t total = thread_cpu_ns() - t_start;
        best_parse = parse_ns < best_parse ? parse_ns : best_parse;
        best_build = build_ns < best_build ? build_ns : best_build;
        best_total = total < best_total ? total : best_total;
    }
    printf("{\"events\":%zu,\"parse_ns_per_event\":%.0f,\"build_ns_per_event\":%.0f,"
           "\"total_ns_per_event\":%.0f,\"copy_bytes_per_event\":%.0f}\n",
           events, (double)best_parse / (double)events, (double)best_build / (double)events,
           (double)best_total / (double)events, (double)copy_bytes / (double)events);
    for (size_t i = 0; i < nbodies; i++)
        free(bodies[i].data);
    free(bodies);
    return 0;
}
