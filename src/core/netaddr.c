/*
 * netaddr.c — IP addresses and address blocks (CIDR) as text, for PE_TRUSTED_PROXIES and the
 * client address derived from X-Forwarded-For (src/http/forwarded.c).
 *
 * Invariants:
 *  1. One form for both families: IPv4 is the IPv4-mapped IPv6 address, an IPv4 prefix /n is
 *     /96+n, so a list mixes families and an IPv4 peer on an IPv6 socket (::ffff:a.b.c.d) is
 *     matched by the IPv4 block that names it.
 *  2. Parsers read only the bytes they are given (no NUL needed) and refuse rather than guess:
 *     no octal or hex IPv4 parts, no zones, no brackets or ports, no bits past a prefix.
 *  3. pe_ip_format is canonical: every spelling of one address formats the same, so the text
 *     can be a key (the sign-in throttle's per-address row).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "pe/core.h"

/* The longest address text inet_pton can accept, with room to spare: anything longer is not
 * an address, and is refused before it is copied. */
#define ADDR_TEXT_MAX 64

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool pe_ip_is_v4(const pe_ip_t *ip)
{
    return memcmp(ip->b, V4_MAPPED, sizeof V4_MAPPED) == 0;
}

int pe_ip_parse(const char *s, size_t n, pe_ip_t *out)
{
    char text[ADDR_TEXT_MAX];
    if (n == 0 || n >= sizeof text || memchr(s, '\0', n))
        return PE_EINVAL;
    memcpy(text, s, n);
    text[n] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memcpy(out->b, V4_MAPPED, sizeof V4_MAPPED);
        memcpy(out->b + 12, &v4, 4);
        return 0;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, text, &v6) == 1) {
        memcpy(out->b, &v6, 16);
        return 0;
    }
    return PE_EINVAL;
}

void pe_ip_format(const pe_ip_t *ip, char out[PE_IP_TEXT_LEN])
{
    const char *ok = pe_ip_is_v4(ip) ? inet_ntop(AF_INET, ip->b + 12, out, PE_IP_TEXT_LEN)
                                     : inet_ntop(AF_INET6, ip->b, out, PE_IP_TEXT_LEN);
    if (!ok) /* cannot happen with a buffer of INET6_ADDRSTRLEN */
        snprintf(out, PE_IP_TEXT_LEN, "unknown");
}

/* True when the first bits bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* True when no bit of ip past the first bits is set. */
static bool host_bits_clear(const pe_ip_t *ip, unsigned bits)
{
    for (unsigned i = bits; i < 128; i++)
        if (ip->b[i / 8] & (0x80 >> (i % 8)))
            return false;
    return true;
}

/* Parses one "address[/prefix]" of exactly n bytes. */
static int parse_cidr(const char *s, size_t n, pe_cidr_t *out)
{
    const char *slash = memchr(s, '/', n);
    size_t addr_len = slash ? (size_t)(slash - s) : n;
    if (pe_ip_parse(s, addr_len, &out->net) != 0)
        return PE_EINVAL;
    bool v4 = pe_ip_is_v4(&out->net) && !memchr(s, ':', addr_len);
    unsigned max = v4 ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end || end - p > 3)
            return PE_EINVAL;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return PE_EINVAL;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max || (slash[1] == '0' && n - addr_len > 2)) /* no "/08" */
            return PE_EINVAL;
    }
    /* "::ffff:10.0.0.0/104" is written in IPv6 terms already; "10.0.0.0/8" is not */
    out->bits = (uint8_t)(v4 ? 96 + bits : bits);
    return host_bits_clear(&out->net, out->bits) ? 0 : PE_EINVAL;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

int pe_cidr_list_parse(const char *s, pe_cidr_list_t *out, size_t *bad_off, size_t *bad_len)
{
    memset(out, 0, sizeof *out);
    *bad_off = *bad_len = 0;
    const char *p = s;
    while (blank(*p))
        p++;
    if (*p == '\0')
        return 0;
    for (const char *start = s;; start++) {
        const char *comma = strchr(start, ',');
        const char *end = comma ? comma : start + strlen(start);
        while (start < end && blank(*start))
            start++;
        const char *last = end;
        while (last > start && blank(last[-1]))
            last--;
        *bad_off = (size_t)(start - s);
        *bad_len = (size_t)(last - start);
        if (out->count == PE_CIDR_LIST_MAX) {
            memset(out, 0, sizeof *out);
            return PE_ETOOBIG;
        }
        if (last == start ||
            parse_cidr(start, (size_t)(last - start), &out->items[out->count]) != 0) {
            memset(out, 0, sizeof *out);
            return PE_EINVAL;
        }
        out->count++;
        if (!comma)
            break;
        start = comma;
    }
    *bad_off = *bad_len = 0;
    return 0;
}

bool pe_cidr_list_contains(const pe_cidr_list_t *list, const pe_ip_t *ip)
{
    if (!list)
        return false;
    for (size_t i = 0; i < list->count; i++)
        if (prefix_equal(list->items[i].net.b, ip->b, list->items[i].bits))
            return true;
    return false;
}
