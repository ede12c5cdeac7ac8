/*
 * forwarded.c — the client's address behind reverse proxies: X-Forwarded-For, believed only as
 * far as the proxies the operator trusts (PE_TRUSTED_PROXIES).
 *
 * Each proxy appends the address it received the request from, so the header reads, left to
 * right, from whatever the client claimed to the hop nearest us:
 *
 *     X-Forwarded-For: <client's own claims…>, <client>, <proxy 1>, …     peer = last proxy
 *                      └── never read ──────┘  ▲ first untrusted entry, walking right to left
 *
 * Invariants:
 *  1. An untrusted peer's header counts for nothing: the client is the peer.
 *  2. The walk goes right to left over every X-Forwarded-For header in order received (a proxy
 *     may add its own header line after the client's instead of appending), skipping trusted
 *     addresses; the first untrusted one is the client. Entries left of it are never parsed, so
 *     nothing a client writes there — garbage included — changes the answer.
 *  3. An entry the walk reaches that is not an address makes the answer the peer: never a
 *     guess, never an error (the request goes on; nothing here can produce a 5xx).
 *  4. Empty list elements are ignored (RFC 9110 §5.6.1). When every entry is trusted the client
 *     is the leftmost one (a request made by the proxies' own network).
 *  5. Pure and bounded: no allocation, reads only the given strings, linear in their length.
 */
#include <string.h>

#include "pe/http.h"

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* True when [s, end) is a port: 1..5 digits, at most 65535. */
static bool port(const char *s, const char *end)
{
    if (s == end || end - s > 5)
        return false;
    unsigned v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned)(*s - '0');
    }
    return v <= 65535;
}

/* Parses one entry [s, end), already trimmed and not empty: "a.b.c.d", "a.b.c.d:port",
 * "x::y", "[x::y]" or "[x::y]:port" (the forms proxies write). */
static int entry_address(const char *s, const char *end, pe_ip_t *out)
{
    if (*s == '[') {
        const char *close = memchr(s, ']', (size_t)(end - s));
        if (!close || !memchr(s, ':', (size_t)(close - s)))
            return PE_EINVAL;
        if (close + 1 != end && (close[1] != ':' || !port(close + 2, end)))
            return PE_EINVAL;
        return pe_ip_parse(s + 1, (size_t)(close - s - 1), out);
    }
    const char *colon = memchr(s, ':', (size_t)(end - s));
    if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) { /* one colon: v4:port */
        if (!port(colon + 1, end) || pe_ip_parse(s, (size_t)(colon - s), out) != 0 ||
            !pe_ip_is_v4(out))
            return PE_EINVAL;
        return 0;
    }
    return pe_ip_parse(s, (size_t)(end - s), out);
}

bool pe_http_forwarded_client(const pe_cidr_list_t *trusted, const pe_ip_t *peer,
                              const char *const *values, size_t nvalues, pe_ip_t *client)
{
    *client = *peer;
    if (!pe_cidr_list_contains(trusted, peer))
        return false;
    bool found = false;
    pe_ip_t leftmost = *peer;
    for (size_t v = nvalues; v-- > 0;) {
        const char *value = values[v] ? values[v] : "";
        const char *end = value + strlen(value); /* the unread part is [value, end) */
        for (;;) {
            const char *start = end;
            while (start > value && start[-1] != ',')
                start--;
            const char *first = start, *last = end;
            while (first < last && ows(*first))
                first++;
            while (last > first && ows(last[-1]))
                last--;
            if (first < last) {
                pe_ip_t ip;
                if (entry_address(first, last, &ip) != 0)
                    return false; /* invariant 3: *client is still the peer */
                if (!pe_cidr_list_contains(trusted, &ip)) {
                    *client = ip;
                    return true;
                }
                leftmost = ip;
                found = true;
            }
            if (start == value)
                break;
            end = start - 1; /* before the comma */
        }
    }
    if (found)
        *client = leftmost;
    return found;
}
