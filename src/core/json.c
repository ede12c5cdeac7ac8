/*
 * json.c — parsing untrusted JSON safely with cJSON.
 *
 * Invariants:
 *  1. Input is length-counted: bytes past len are never read, and a NUL inside is refused.
 *  2. cJSON's global error pointer is never consulted (it is not thread-safe); the end pointer
 *     of cJSON_ParseWithLengthOpts tells where parsing stopped.
 *  3. Nesting deeper than PE_JSON_MAX_DEPTH is refused before cJSON recurses into it.
 *  4. No string may contain \u0000: cJSON's C strings would end there and drop the rest.
 *  5. Between tokens only space, tab, LF and CR are whitespace (RFC 8259), as on both ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/core.h"

#define PE_JSON_MAX_DEPTH 64

/* Checks the structure outside strings in one pass: nesting depth, and no control bytes other
 * than JSON's four whitespace characters (cJSON would skip any byte ≤ 0x20 between tokens). */
static bool structure_ok(const char *s, size_t len, char *err, size_t errlen)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            /* skip the plain bytes of the string in one run */
            while (i < len && s[i] != '"' && s[i] != '\\')
                i++;
            if (i == len)
                break;
            c = s[i];
            if (c == '\\') {
                /* cJSON would end the C string at an escaped NUL and silently drop the rest */
                if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0) {
                    snprintf(err, errlen, "JSON string contains \\u0000 at byte %zu", i);
                    return false;
                }
                i++;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > PE_JSON_MAX_DEPTH) {
                snprintf(err, errlen, "JSON nests deeper than %d levels", PE_JSON_MAX_DEPTH);
                return false;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        } else if ((unsigned char)c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            snprintf(err, errlen, "control byte 0x%02x outside a string at byte %zu",
                     (unsigned)(unsigned char)c, i);
            return false;
        }
    }
    return true;
}

int pe_json_parse(const char *text, size_t len, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len == 0) {
        snprintf(err, errlen, "empty body, expected JSON");
        return PE_EINVAL;
    }
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "JSON contains a NUL byte");
        return PE_EINVAL;
    }
    if (!pe_utf8_valid(text, len)) {
        snprintf(err, errlen, "JSON is not valid UTF-8");
        return PE_EINVAL;
    }
    if (!structure_ok(text, len, err, errlen))
        return PE_EINVAL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!j) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        snprintf(err, errlen, "malformed JSON near byte %zu", at);
        return PE_EINVAL;
    }
    /* Only whitespace may follow the value. */
    for (const char *p = end; p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(j);
            snprintf(err, errlen, "unexpected data after JSON value at byte %zu",
                     (size_t)(p - text));
            return PE_EINVAL;
        }
    }
    *out = j;
    return 0;
}

char *pe_json_print(const cJSON *j)
{
    return cJSON_PrintUnformatted(j);
}
