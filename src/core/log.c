/*
 * log.c — structured logging: one JSON object per line on stderr.
 *
 * Invariants:
 *  1. A line is written with one write(2), so lines from concurrent threads never interleave
 *     (stderr is unbuffered and writes of a line are atomic for pipes up to PIPE_BUF; files
 *     opened O_APPEND keep whole lines too).
 *  2. The minimum level is set once at start-up before threads start; afterwards it is only
 *     read, so no lock is needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pe/core.h"

static pe_log_level_t min_level = PE_LOG_INFO;

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void pe_log_set_level(pe_log_level_t level)
{
    min_level = level;
}

bool pe_log_enabled(pe_log_level_t level)
{
    return level >= min_level;
}

const char *pe_log_level_name(pe_log_level_t level)
{
    return (unsigned)level < PE_ARRAY_LEN(LEVEL_NAMES) ? LEVEL_NAMES[level] : "info";
}

int pe_log_level_parse(const char *s, pe_log_level_t *out)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(LEVEL_NAMES); i++) {
        if (strcmp(s, LEVEL_NAMES[i]) == 0) {
            *out = (pe_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = PE_LOG_WARN;
        return 0;
    }
    return PE_EINVAL;
}

void pe_log_raw(const char *json, size_t len)
{
    /* Append the newline in the same write so the line stays whole. */
    char stackbuf[2048];
    char *line = len + 1 <= sizeof stackbuf ? stackbuf : malloc(len + 1);
    if (!line)
        return;
    memcpy(line, json, len);
    line[len] = '\n';
    size_t off = 0;
    while (off < len + 1) {
        ssize_t w = write(STDERR_FILENO, line + off, len + 1 - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (line != stackbuf)
        free(line);
}

void pe_log(pe_log_level_t level, const char *event, const char *fmt, ...)
{
    if (!pe_log_enabled(level))
        return;
    char ts[32];
    pe_time_format_rfc3339(pe_now_unix_us(), ts, sizeof ts);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;

    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts,
                           pe_log_level_name(level));
    rc |= pe_buf_json_string(&b, event, strlen(event));
    rc |= pe_buf_puts(&b, ",\"msg\":");
    rc |= pe_buf_json_string(&b, msg, (size_t)n);
    rc |= pe_buf_puts(&b, "}");
    if (rc == 0)
        pe_log_raw(b.data, b.len);
    pe_buf_free(&b);
}
