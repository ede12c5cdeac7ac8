/*
 * refusal.c — the one shape of a refused input: a stable machine code and a message that names
 * the path and the rule ("products[3].price: must be >= 0"), written to clients as
 * {"error":{"code":…,"message":…}}; and the one rule for control characters in text.
 *
 * Invariants:
 *  1. pe_refuse never fails and never reads past its buffers: code and message are cut to their
 *     fields (a message cut short stays valid UTF-8 when its pieces were).
 *  2. A control character is the same thing everywhere: C0 (U+0000..U+001F), DEL (U+007F) and
 *     C1 (U+0080..U+009F, UTF-8 0xC2 0x80..0x9F). Text that shows up in a dashboard, a log line
 *     or a CSV export may contain none of them.
 */
#include <stdio.h>
#include <string.h>

#include "pe/core.h"

int pe_vrefuse(pe_refusal_t *r, int rc, const char *code, const char *fmt, va_list ap)
{
    if (r) {
        snprintf(r->code, sizeof r->code, "%s", code ? code : pe_error_code(rc));
        // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
        vsnprintf(r->message, sizeof r->message, fmt, ap);
    }
    return rc;
}

int pe_refuse(pe_refusal_t *r, int rc, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pe_vrefuse(r, rc, code, fmt, ap);
    va_end(ap);
    return rc;
}

void pe_refusal_clear(pe_refusal_t *r)
{
    if (r)
        r->code[0] = r->message[0] = '\0';
}

int pe_error_json(pe_buf_t *b, const char *code, const char *message)
{
    int rc = pe_buf_puts(b, "{\"error\":{\"code\":");
    rc = rc ? rc : pe_buf_json_string(b, code, strlen(code));
    rc = rc ? rc : pe_buf_puts(b, ",\"message\":");
    rc = rc ? rc : pe_buf_json_string(b, message, strlen(message));
    return rc ? rc : pe_buf_puts(b, "}}");
}

int pe_refusal_json(const pe_refusal_t *r, pe_buf_t *b)
{
    return pe_error_json(b, r->code, r->message);
}

bool pe_text_has_control(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7F)
            return true;
        if (p[i] == 0xC2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F)
            return true;
    }
    return false;
}
