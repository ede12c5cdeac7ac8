/*
 * fuzz_forwarded.c — libFuzzer target for the client address behind trusted proxies:
 * pe_http_forwarded_client (X-Forwarded-For, untrusted input from anyone who can reach the
 * proxy) and the parsers under it (pe_ip_parse, pe_cidr_list_parse).
 *
 * Input: byte 0 picks the peer (bits 0-1: a trusted IPv4, a trusted IPv6, an IPv4-mapped
 * trusted, an untrusted address); the rest, split at '\n', is up to 8 X-Forwarded-For lines (a
 * NUL ends a line early, as it would in a request). Each line is copied into an exactly-sized
 * heap buffer so a read past its end is an ASan error. The whole rest is also parsed as a
 * PE_TRUSTED_PROXIES value.
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. Deterministic, and *client is always set: the peer when the header was not used.
 *  2. An untrusted peer's header is never used.
 *  3. A client from the header is untrusted, or every entry was trusted: then one more
 *     untrusted line in front becomes the client.
 *  4. Left of an untrusted client nothing is read: a garbage line in front changes nothing.
 *  5. The client's canonical text parses back to the same address.
 *  6. A CIDR list that parses has 0..PE_CIDR_LIST_MAX blocks, each containing its own network;
 *     one that does not parse is left empty and blames bytes inside the input.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_forwarded: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_LINES 8

static const char TRUSTED[] = "10.0.0.0/8, fd00::/8, 192.0.2.1";
static const char *const PEERS[] = {"10.0.0.5", "fd00::1", "::ffff:10.9.9.9", "203.0.113.9"};

static pe_ip_t address(const char *text)
{
    pe_ip_t ip;
    if (pe_ip_parse(text, strlen(text), &ip) != 0)
        abort();
    return ip;
}

static char *copy_of(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (!c)
        abort();
    if (n)
        memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

static bool same(const pe_ip_t *a, const pe_ip_t *b)
{
    return memcmp(a->b, b->b, sizeof a->b) == 0;
}

/* The client with one extra line in front of lines. */
static bool with_front_line(const pe_cidr_list_t *trusted, const pe_ip_t *peer, const char *front,
                            char **lines, size_t n, pe_ip_t *client)
{
    const char *all[MAX_LINES + 1];
    char *heap_front = copy_of(front, strlen(front));
    all[0] = heap_front;
    for (size_t i = 0; i < n; i++)
        all[i + 1] = lines[i];
    bool h = pe_http_forwarded_client(trusted, peer, all, n + 1, client);
    free(heap_front);
    return h;
}

static void check_cidr_list(const char *text)
{
    pe_cidr_list_t l;
    size_t off = 0, len = 0;
    int rc = pe_cidr_list_parse(text, &l, &off, &len);
    if (rc == 0) {
        CHECK(l.count <= PE_CIDR_LIST_MAX);
        for (size_t i = 0; i < l.count; i++) {
            CHECK(l.items[i].bits <= 128);
            CHECK(pe_cidr_list_contains(&l, &l.items[i].net));
        }
    } else {
        CHECK(rc == PE_EINVAL || rc == PE_ETOOBIG);
        CHECK(l.count == 0);
        CHECK(off + len <= strlen(text));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    pe_cidr_list_t trusted;
    size_t off, len;
    if (pe_cidr_list_parse(TRUSTED, &trusted, &off, &len) != 0)
        abort();
    pe_ip_t peer = address(PEERS[data[0] & 3]);
    const char *rest = (const char *)data + 1;
    size_t nrest = size - 1;

    char *lines[MAX_LINES];
    size_t n = 0;
    for (size_t pos = 0; pos <= nrest && n < MAX_LINES;) {
        const char *nl = memchr(rest + pos, '\n', nrest - pos);
        size_t end = nl ? (size_t)(nl - rest) : nrest;
        const char *nul = memchr(rest + pos, '\0', end - pos);
        lines[n++] = copy_of(rest + pos, nul ? (size_t)(nul - (rest + pos)) : end - pos);
        if (!nl)
            break;
        pos = end + 1;
    }

    pe_ip_t client, again;
    bool from_header =
        pe_http_forwarded_client(&trusted, &peer, (const char *const *)lines, n, &client);
    CHECK(from_header ==
          pe_http_forwarded_client(&trusted, &peer, (const char *const *)lines, n, &again));
    CHECK(same(&client, &again));
    if (!from_header)
        CHECK(same(&client, &peer));
    if (!pe_cidr_list_contains(&trusted, &peer))
        CHECK(!from_header);

    if (from_header) {
        char text[PE_IP_TEXT_LEN];
        pe_ip_format(&client, text);
        pe_ip_t back;
        CHECK(pe_ip_parse(text, strlen(text), &back) == 0);
        CHECK(same(&back, &client));
        pe_ip_t other;
        if (pe_cidr_list_contains(&trusted, &client)) {
            /* every entry was trusted: an untrusted one in front is the client now */
            CHECK(with_front_line(&trusted, &peer, "198.51.100.77", lines, n, &other));
            pe_ip_t want = address("198.51.100.77");
            CHECK(same(&other, &want));
        } else {
            CHECK(with_front_line(&trusted, &peer, "\x01garbage, [", lines, n, &other));
            CHECK(same(&other, &client));
        }
    }

    char *whole = copy_of(rest, strnlen(rest, nrest));
    check_cidr_list(whole);
    pe_ip_t ip;
    if (pe_ip_parse(whole, strlen(whole), &ip) == 0) {
        char text[PE_IP_TEXT_LEN];
        pe_ip_format(&ip, text);
        pe_ip_t back;
        CHECK(pe_ip_parse(text, strlen(text), &back) == 0 && same(&back, &ip));
    }
    free(whole);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    return 0;
}
