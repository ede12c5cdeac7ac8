/*
 * validate.c — the rules for what a merchant may type: store names, currencies, time zones,
 * emails, passwords, and the uuid shape every id must have before it is worth a query.
 *
 * Invariants:
 *  1. Pure functions: no I/O, no allocation, no global state; thread-safe.
 *  2. Every check reads at most one byte past its limit (strnlen), so oversized input is refused
 *     in constant time.
 *  3. An error message names the field first ("name: …") so the API can point at it, and never
 *     echoes the input (it may be a password).
 *  4. These rules agree with the CHECK constraints of sql/migrations/0001_tenancy.sql; the
 *     database is the backstop, not the first line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tenancy/tenancy_internal.h"

void tenancy_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* clang-analyzer 14 misreads va_start on x86-64 (it flags core's log.c the same way). */
    vsnprintf(err, errlen, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
}

static bool hex_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool tenancy_uuid_valid(const char *s)
{
    if (!s || strnlen(s, TENANCY_UUID_STRLEN + 1) != TENANCY_UUID_STRLEN)
        return false;
    for (size_t i = 0; i < TENANCY_UUID_STRLEN; i++) {
        bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_here ? s[i] != '-' : !hex_digit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int tenancy_validate_store_name(const char *name, char *err, size_t errlen)
{
    if (!name) {
        tenancy_set_err(err, errlen, "name: required");
        return PE_EINVAL;
    }
    size_t n = strnlen(name, TENANCY_NAME_MAX + 1);
    if (n == 0 || n > TENANCY_NAME_MAX) {
        tenancy_set_err(err, errlen, "name: must be 1 to %d bytes", TENANCY_NAME_MAX);
        return PE_EINVAL;
    }
    if (!pe_utf8_valid(name, n)) {
        tenancy_set_err(err, errlen, "name: must be valid UTF-8");
        return PE_EINVAL;
    }
    if (pe_text_has_control(name, n)) {
        tenancy_set_err(err, errlen, "name: " PE_TEXT_CONTROL_RULE);
        return PE_EINVAL;
    }
    /* A name of spaces only would show as an empty row in every list. */
    if (strspn(name, " ") == n) {
        tenancy_set_err(err, errlen, "name: must not be blank");
        return PE_EINVAL;
    }
    return 0;
}

int tenancy_validate_currency(const char *currency, char *err, size_t errlen)
{
    if (currency && strnlen(currency, 4) == 3) {
        bool ok = true;
        for (size_t i = 0; i < 3; i++)
            ok = ok && currency[i] >= 'A' && currency[i] <= 'Z';
        if (ok)
            return 0;
    }
    tenancy_set_err(err, errlen, "currency: must be three upper-case letters (ISO 4217)");
    return PE_EINVAL;
}

static bool tz_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '+' || c == '-';
}

int tenancy_validate_timezone_shape(const char *tz, char *err, size_t errlen)
{
    size_t n = tz ? strnlen(tz, TENANCY_TIMEZONE_MAX + 1) : 0;
    bool ok = n >= 1 && n <= TENANCY_TIMEZONE_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = tz_char((unsigned char)tz[i]);
    if (!ok) {
        tenancy_set_err(err, errlen, "timezone: not an IANA time zone name");
        return PE_EINVAL;
    }
    return 0;
}

int tenancy_email_normalise(const char *email, char out[TENANCY_EMAIL_MAX + 1], char *err,
                            size_t errlen)
{
    size_t n = email ? strnlen(email, TENANCY_EMAIL_MAX + 1) : 0;
    if (n < TENANCY_EMAIL_MIN || n > TENANCY_EMAIL_MAX) {
        tenancy_set_err(err, errlen, "email: must be %d to %d bytes", TENANCY_EMAIL_MIN,
                        TENANCY_EMAIL_MAX);
        return PE_EINVAL;
    }
    if (!pe_utf8_valid(email, n)) {
        tenancy_set_err(err, errlen, "email: must be valid UTF-8");
        return PE_EINVAL;
    }
    /* Spaces are refused along with controls: a pasted " a@b.c" would otherwise be a
     * different account from "a@b.c". */
    if (pe_text_has_control(email, n) || memchr(email, ' ', n)) {
        tenancy_set_err(err, errlen, "email: must not contain spaces or control characters");
        return PE_EINVAL;
    }
    const char *at = memchr(email, '@', n);
    if (!at || at == email || at == email + n - 1 ||
        memchr(at + 1, '@', n - 1 - (size_t)(at - email))) {
        tenancy_set_err(err, errlen, "email: must be local@domain");
        return PE_EINVAL;
    }
    /* Only ASCII is folded: that is what every mail system agrees on, and it keeps the
     * normalised form independent of the server's locale. */
    for (size_t i = 0; i < n; i++) {
        out[i] = email[i];
        if (out[i] >= 'A' && out[i] <= 'Z')
            out[i] = (char)(out[i] + ('a' - 'A'));
    }
    out[n] = '\0';
    return 0;
}

int tenancy_validate_password(const char *password, char *err, size_t errlen)
{
    size_t n = password ? strnlen(password, TENANCY_PASSWORD_MAX + 1) : 0;
    if (n < TENANCY_PASSWORD_MIN || n > TENANCY_PASSWORD_MAX) {
        tenancy_set_err(err, errlen, "password: must be %d to %d bytes", TENANCY_PASSWORD_MIN,
                        TENANCY_PASSWORD_MAX);
        return PE_EINVAL;
    }
    return 0;
}
