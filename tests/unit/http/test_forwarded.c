/*
 * test_forwarded.c — the client address behind trusted proxies: addresses and CIDR lists
 * (src/core/netaddr.c), PE_TRUSTED_PROXIES in the configuration (src/core/config.c), and the
 * right-to-left walk of X-Forwarded-For (src/http/forwarded.c).
 *
 * Invariants checked:
 *  1. A CIDR list holds IPv4 and IPv6 blocks (a bare address is one host); IPv4 blocks match
 *     IPv4-mapped IPv6 peers; anything malformed, a prefix out of range or bits set past the
 *     prefix is refused with the offending entry's position; more than PE_CIDR_LIST_MAX entries
 *     are refused; empty is "trust nobody".
 *  2. PE_TRUSTED_PROXIES defaults to empty; a bad value is one line naming the variable and the
 *     entry, with control bytes masked.
 *  3. An untrusted peer's header is ignored. From a trusted peer the walk skips trusted hops
 *     right to left over every header line; the first untrusted entry is the client; entries
 *     left of it are never read (garbage there changes nothing); an unparsable entry reached by
 *     the walk gives the peer; empty elements are skipped; all trusted gives the leftmost.
 *  4. Addresses format canonically, so spellings of one address give one throttle key.
 *  5. Inputs are read within their bounds (exactly-sized heap copies, so ASan catches
 *     over-reads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"
#include "pe_test.h"

static char *heap_copy(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, s, n + 1);
    return copy;
}

static pe_ip_t ip(const char *text)
{
    pe_ip_t out;
    if (pe_ip_parse(text, strlen(text), &out) != 0)
        fail_msg("'%s' should parse as an address", text);
    return out;
}

static void trusted_list(const char *spec, pe_cidr_list_t *out)
{
    size_t off, len;
    char *copy = heap_copy(spec);
    int rc = pe_cidr_list_parse(copy, out, &off, &len);
    if (rc != 0)
        fail_msg("'%s' refused (rc %d) at '%.*s'", spec, rc, (int)len, spec + off);
    free(copy);
}

/* ---- addresses ------------------------------------------------------------------------------- */

static void test_ip_parse_and_format(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canonical;
    } good[] = {
        {"1.2.3.4", "1.2.3.4"},
        {"::ffff:1.2.3.4", "1.2.3.4"}, /* the same address as 1.2.3.4 */
        {"2001:0DB8:0:0::1", "2001:db8::1"},
        {"2001:db8:0:0:0:0:0:1", "2001:db8::1"},
        {"::1", "::1"},
        {"::", "::"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(good); i++) {
        char *copy = heap_copy(good[i].in);
        pe_ip_t a;
        if (pe_ip_parse(copy, strlen(copy), &a) != 0)
            fail_msg("'%s' refused", good[i].in);
        char text[PE_IP_TEXT_LEN];
        pe_ip_format(&a, text);
        assert_string_equal(text, good[i].canonical);
        free(copy);
    }
    pe_ip_t v4 = ip("10.0.0.1"), mapped = ip("::ffff:10.0.0.1"), v6 = ip("fd00::1");
    assert_true(pe_ip_is_v4(&v4));
    assert_true(pe_ip_is_v4(&mapped));
    assert_memory_equal(v4.b, mapped.b, 16);
    assert_false(pe_ip_is_v4(&v6));

    static const char *const bad[] = {
        "",          "1.2.3",        "1.2.3.4.5",         "01.2.3.4",    "1.2.3.04",
        "0x1.2.3.4", "256.1.1.1",    "1.2.3.4 ",          " 1.2.3.4",    "1.2.3.4:80",
        "[::1]",     "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", "2001:db8::g", "localhost",
        "unknown",   "1.2.3.4/32",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char *copy = heap_copy(bad[i]);
        pe_ip_t a;
        if (pe_ip_parse(copy, strlen(copy), &a) != PE_EINVAL)
            fail_msg("'%s' accepted as an address", bad[i]);
        free(copy);
    }
    /* only n bytes are read: a prefix of a longer string is parsed on its own */
    pe_ip_t a;
    assert_int_equal(pe_ip_parse("10.0.0.1, 10.0.0.2", 8, &a), 0);
    assert_memory_equal(a.b, v4.b, 16);
    /* an embedded NUL is not an address */
    assert_int_equal(pe_ip_parse("1.2.3.4\0x", 9, &a), PE_EINVAL);
    /* longer than any address: refused without copying */
    char longer[200];
    memset(longer, '1', sizeof longer);
    assert_int_equal(pe_ip_parse(longer, sizeof longer, &a), PE_EINVAL);
}

/* ---- CIDR lists ------------------------------------------------------------------------------ */

static void test_cidr_list(void **state)
{
    (void)state;
    pe_cidr_list_t l;
    trusted_list("", &l);
    assert_int_equal(l.count, 0);
    trusted_list(" \t ", &l);
    assert_int_equal(l.count, 0);
    pe_ip_t any = ip("10.0.0.1");
    assert_false(pe_cidr_list_contains(&l, &any));
    assert_false(pe_cidr_list_contains(NULL, &any));

    trusted_list("10.0.0.0/8, 192.168.1.1 ,\tfd00::/8,::1,172.16.0.0/12", &l);
    assert_int_equal(l.count, 5);
    static const struct {
        const char *addr;
        bool in;
    } cases[] = {
        {"10.0.0.0", true},
        {"10.255.255.255", true},
        {"11.0.0.0", false},
        {"9.255.255.255", false},
        {"192.168.1.1", true},
        {"192.168.1.2", false},
        {"172.16.0.1", true},
        {"172.31.255.255", true},
        {"172.32.0.0", false},
        {"fd00::1", true},
        {"fdff:ffff::1", true},
        {"fe00::1", false},
        {"::1", true},
        {"::2", false},
        {"::ffff:10.1.2.3", true},
        {"::ffff:11.1.2.3", false},
        {"::a00:1", false}, /* IPv4-compatible is not IPv4 */
        {"2001:db8::1", false},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_ip_t a = ip(cases[i].addr);
        if (pe_cidr_list_contains(&l, &a) != cases[i].in)
            fail_msg("%s: contained %d, want %d", cases[i].addr, !cases[i].in, cases[i].in);
    }

    /* /0 of a family is that whole family, and only it */
    trusted_list("0.0.0.0/0", &l);
    pe_ip_t v4 = ip("203.0.113.9"), v6 = ip("2001:db8::1");
    assert_true(pe_cidr_list_contains(&l, &v4));
    assert_false(pe_cidr_list_contains(&l, &v6));
    trusted_list("::/0", &l);
    assert_true(pe_cidr_list_contains(&l, &v4)); /* IPv4-mapped lies inside ::/0 */
    assert_true(pe_cidr_list_contains(&l, &v6));
    /* written in IPv6 terms: ::ffff:10.0.0.0/104 is 10.0.0.0/8 */
    trusted_list("::ffff:10.0.0.0/104", &l);
    pe_ip_t ten = ip("10.9.8.7");
    assert_true(pe_cidr_list_contains(&l, &ten));
    /* odd prefixes */
    trusted_list("10.0.0.128/25, 2001:db8::/33", &l);
    pe_ip_t in25 = ip("10.0.0.200"), out25 = ip("10.0.0.127"), in33 = ip("2001:db8:7fff::1"),
            out33 = ip("2001:db8:8000::1");
    assert_true(pe_cidr_list_contains(&l, &in25));
    assert_false(pe_cidr_list_contains(&l, &out25));
    assert_true(pe_cidr_list_contains(&l, &in33));
    assert_false(pe_cidr_list_contains(&l, &out33));

    /* refusals name the entry */
    static const struct {
        const char *spec, *entry;
    } bad[] = {
        {"10.0.0.1/8", "10.0.0.1/8"}, /* bits past the prefix */
        {"10.0.0.0/8, 192.168.1.0/16", "192.168.1.0/16"},
        {"10.0.0.0/33", "10.0.0.0/33"},
        {"fd00::/129", "fd00::/129"},
        {"10.0.0.0/", "10.0.0.0/"},
        {"10.0.0.0/08", "10.0.0.0/08"},
        {"10.0.0.0/-1", "10.0.0.0/-1"},
        {"10.0.0.0/8/8", "10.0.0.0/8/8"},
        {"10.0.0.0/1000", "10.0.0.0/1000"},
        {"10.0.0.0 /8", "10.0.0.0 /8"},
        {"foo", "foo"},
        {"10.0.0.0/8,", ""},
        {",10.0.0.0/8", ""},
        {"10.0.0.0/8,,1.2.3.4", ""},
        {"01.2.3.4", "01.2.3.4"},
        {"[::1]", "[::1]"},
        {"fe80::1%eth0", "fe80::1%eth0"},
        {"1.2.3.4:80", "1.2.3.4:80"},
        {"10.0.0.0/8 fd00::/8", "10.0.0.0/8 fd00::/8"},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        char *copy = heap_copy(bad[i].spec);
        size_t off = 99, len = 99;
        l.count = 7;
        int rc = pe_cidr_list_parse(copy, &l, &off, &len);
        if (rc != PE_EINVAL)
            fail_msg("'%s' accepted (rc %d)", bad[i].spec, rc);
        assert_int_equal(l.count, 0); /* nothing half-parsed is left to trust */
        assert_true(off + len <= strlen(copy));
        if (strlen(bad[i].entry) != len || strncmp(copy + off, bad[i].entry, len) != 0)
            fail_msg("'%s': blamed '%.*s', want '%s'", bad[i].spec, (int)len, copy + off,
                     bad[i].entry);
        free(copy);
    }

    /* PE_CIDR_LIST_MAX entries fit, one more does not */
    pe_buf_t b = PE_BUF_INIT;
    for (int i = 0; i < PE_CIDR_LIST_MAX; i++)
        assert_int_equal(pe_buf_printf(&b, "%s10.0.%d.0/24", i ? "," : "", i), 0);
    trusted_list(b.data, &l);
    assert_int_equal(l.count, PE_CIDR_LIST_MAX);
    assert_int_equal(pe_buf_puts(&b, ",10.1.0.0/16"), 0);
    size_t off, len;
    assert_int_equal(pe_cidr_list_parse(b.data, &l, &off, &len), PE_ETOOBIG);
    assert_int_equal(l.count, 0);
    pe_buf_free(&b);
}

/* ---- PE_TRUSTED_PROXIES ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
} var_t;

static const char *table_lookup(const char *name, void *ctx)
{
    for (const var_t *v = ctx; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

static void test_config(void **state)
{
    (void)state;
    pe_config_t cfg;
    char err[512];
    var_t none[] = {{NULL, NULL}};
    assert_int_equal(pe_config_load(&cfg, table_lookup, none, err, sizeof err), 0);
    assert_int_equal(cfg.trusted_proxies.count, 0); /* trust nobody */
    pe_config_free(&cfg);

    var_t good[] = {{"PE_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"}, {NULL, NULL}};
    assert_int_equal(pe_config_load(&cfg, table_lookup, good, err, sizeof err), 0);
    assert_int_equal(cfg.trusted_proxies.count, 2);
    pe_ip_t proxy = ip("10.1.1.1"), client = ip("203.0.113.1");
    assert_true(pe_cidr_list_contains(&cfg.trusted_proxies, &proxy));
    assert_false(pe_cidr_list_contains(&cfg.trusted_proxies, &client));
    pe_config_free(&cfg);

    static const char *const bad[] = {"10.0.0.1/8", "10.0.0.0/8,nope", "proxy\n.example",
                                      "10.0.0.0/8,"};
    for (size_t i = 0; i < PE_ARRAY_LEN(bad); i++) {
        var_t vars[] = {{"PE_TRUSTED_PROXIES", bad[i]}, {NULL, NULL}};
        assert_int_equal(pe_config_load(&cfg, table_lookup, vars, err, sizeof err), PE_EINVAL);
        if (strncmp(err, "PE_TRUSTED_PROXIES: ", 20) != 0 || strchr(err, '\n'))
            fail_msg("'%s': message \"%s\"", bad[i], err);
        assert_null(cfg.database_url); /* nothing left allocated */
        pe_config_free(&cfg);
    }
    var_t one[] = {{"PE_TRUSTED_PROXIES", "10.0.0.0/8, nope"}, {NULL, NULL}};
    assert_int_equal(pe_config_load(&cfg, table_lookup, one, err, sizeof err), PE_EINVAL);
    assert_non_null(strstr(err, "'nope'"));
    pe_buf_t b = PE_BUF_INIT;
    for (int i = 0; i <= PE_CIDR_LIST_MAX; i++)
        assert_int_equal(pe_buf_printf(&b, "%s10.0.%d.0/24", i ? "," : "", i), 0);
    var_t many[] = {{"PE_TRUSTED_PROXIES", b.data}, {NULL, NULL}};
    assert_int_equal(pe_config_load(&cfg, table_lookup, many, err, sizeof err), PE_EINVAL);
    assert_non_null(strstr(err, "more than 64 entries"));
    pe_buf_free(&b);
}

/* ---- X-Forwarded-For ------------------------------------------------------------------------- */

#define TRUSTED "10.0.0.0/8, fd00::/8"

/* The client of peer with up to four header lines (NULL-terminated), as text, and whether it
 * came from the header. */
static bool client_of(const char *trusted, const char *peer, const char *const *lines, char *out)
{
    pe_cidr_list_t l;
    trusted_list(trusted, &l);
    char *copies[4] = {NULL};
    size_t n = 0;
    for (; lines && lines[n]; n++) {
        assert_true(n < PE_ARRAY_LEN(copies));
        copies[n] = heap_copy(lines[n]);
    }
    pe_ip_t p = ip(peer), c;
    memset(&c, 0xa5, sizeof c);
    bool from_header = pe_http_forwarded_client(&l, &p, (const char *const *)copies, n, &c);
    pe_ip_format(&c, out);
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return from_header;
}

static void expect_client(const char *peer, const char *header, const char *want, bool from_header)
{
    char got[PE_IP_TEXT_LEN];
    const char *lines[] = {header, NULL};
    bool h = client_of(TRUSTED, peer, header ? lines : NULL, got);
    if (strcmp(got, want) != 0 || h != from_header)
        fail_msg("peer %s, X-Forwarded-For \"%s\": client %s (from header %d), want %s (%d)", peer,
                 header ? header : "(none)", got, h, want, from_header);
}

static void test_untrusted_peer_is_the_client(void **state)
{
    (void)state;
    expect_client("203.0.113.9", "1.2.3.4", "203.0.113.9", false);
    expect_client("203.0.113.9", "10.0.0.1", "203.0.113.9", false);
    expect_client("203.0.113.9", NULL, "203.0.113.9", false);
    expect_client("2001:db8::9", "1.2.3.4", "2001:db8::9", false);
    /* no trusted proxies at all: never the header */
    char got[PE_IP_TEXT_LEN];
    const char *lines[] = {"1.2.3.4", NULL};
    assert_false(client_of("", "10.0.0.5", lines, got));
    assert_string_equal(got, "10.0.0.5");
    pe_ip_t p = ip("10.0.0.5"), c;
    assert_false(pe_http_forwarded_client(NULL, &p, lines, 1, &c));
    assert_memory_equal(c.b, p.b, 16);
}

static void test_walk_right_to_left(void **state)
{
    (void)state;
    const char *proxy = "10.0.0.5";
    expect_client(proxy, NULL, proxy, false);
    expect_client(proxy, "", proxy, false);
    expect_client(proxy, " , ,", proxy, false);
    expect_client(proxy, "1.2.3.4", "1.2.3.4", true);
    /* what the client claimed itself is left of the address the proxy saw: ignored */
    expect_client(proxy, "6.6.6.6, 1.2.3.4", "1.2.3.4", true);
    expect_client(proxy, "10.0.0.99, 1.2.3.4", "1.2.3.4", true);
    /* trusted hops are skipped */
    expect_client(proxy, "1.2.3.4, 10.0.0.7", "1.2.3.4", true);
    expect_client(proxy, "6.6.6.6, 1.2.3.4, 10.0.0.7, fd00::3", "1.2.3.4", true);
    /* garbage left of the client is never read */
    expect_client(proxy, "garbage, 1.2.3.4", "1.2.3.4", true);
    expect_client(proxy, "\x01\xff, [, ::, 1.2.3.4", "1.2.3.4", true);
    /* an unparsable entry the walk reaches: the peer, never a guess */
    expect_client(proxy, "1.2.3.4, garbage", proxy, false);
    expect_client(proxy, "1.2.3.4, 10.0.0.7, unknown", proxy, false);
    expect_client(proxy, "1.2.3.4, garbage, 10.0.0.7", proxy, false);
    /* every hop trusted: the leftmost */
    expect_client(proxy, "10.0.0.8, 10.0.0.9", "10.0.0.8", true);
    expect_client(proxy, "10.0.0.8", "10.0.0.8", true);
    /* empty elements are skipped, whitespace trimmed */
    expect_client(proxy, " , 1.2.3.4 ,, \t", "1.2.3.4", true);
    expect_client(proxy, "1.2.3.4,10.0.0.7", "1.2.3.4", true);
    /* the forms proxies write, canonicalised */
    expect_client(proxy, "1.2.3.4:5678", "1.2.3.4", true);
    expect_client(proxy, "[2001:DB8::1]:443", "2001:db8::1", true);
    expect_client(proxy, "[2001:db8::1]", "2001:db8::1", true);
    expect_client(proxy, "2001:0db8:0::1", "2001:db8::1", true);
    expect_client(proxy, "::ffff:1.2.3.4", "1.2.3.4", true);
    expect_client(proxy, "[fd00::3]:80, 10.0.0.7:1", "fd00::3", true); /* all trusted */
    /* malformed forms */
    static const char *const malformed[] = {
        "1.2.3.4:",        "1.2.3.4:99999",   "1.2.3.4:80a",         "1.2.3.4:-1", "[2001:db8::1",
        "[2001:db8::1]x",  "[2001:db8::1]:",  "[1.2.3.4]",           "[]",         "fe80::1%eth0",
        "1.2.3.4 5.6.7.8", "\"1.2.3.4\"",     "for=1.2.3.4",         "01.2.3.4",   "unknown",
        "_hidden",         "1.2.3.4;proto=x", "[2001:db8::1]:80:80",
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(malformed); i++)
        expect_client(proxy, malformed[i], proxy, false);
    /* IPv6 and IPv4-mapped peers */
    expect_client("fd00::1", "2001:db8::5", "2001:db8::5", true);
    expect_client("::ffff:10.0.0.5", "1.2.3.4", "1.2.3.4", true);
}

static void test_several_header_lines(void **state)
{
    (void)state;
    char got[PE_IP_TEXT_LEN];
    /* a proxy that adds its own line after the client's: the last line is the proxy's */
    const char *spoofed[] = {"6.6.6.6", "1.2.3.4", NULL};
    assert_true(client_of(TRUSTED, "10.0.0.5", spoofed, got));
    assert_string_equal(got, "1.2.3.4");
    const char *hops[] = {"6.6.6.6, 1.2.3.4", "10.0.0.7", "fd00::9, 10.0.0.8", NULL};
    assert_true(client_of(TRUSTED, "10.0.0.5", hops, got));
    assert_string_equal(got, "1.2.3.4");
    const char *empty_last[] = {"1.2.3.4, 10.0.0.9", "", NULL};
    assert_true(client_of(TRUSTED, "10.0.0.5", empty_last, got));
    assert_string_equal(got, "1.2.3.4");
    const char *garbage_first[] = {"garbage", "1.2.3.4", NULL};
    assert_true(client_of(TRUSTED, "10.0.0.5", garbage_first, got));
    assert_string_equal(got, "1.2.3.4");
    const char *garbage_last[] = {"1.2.3.4", "garbage", NULL};
    assert_false(client_of(TRUSTED, "10.0.0.5", garbage_last, got));
    assert_string_equal(got, "10.0.0.5");
    /* a NULL line is an empty one */
    pe_cidr_list_t l;
    trusted_list(TRUSTED, &l);
    pe_ip_t p = ip("10.0.0.5"), c;
    assert_true(pe_http_forwarded_client(&l, &p, (const char *const[]){"1.2.3.4", NULL}, 2, &c));
    pe_ip_format(&c, got);
    assert_string_equal(got, "1.2.3.4");
}

static void test_long_headers(void **state)
{
    (void)state;
    /* thousands of trusted hops, then the client at the far left: found, no recursion, no
     * allocation (ASan would see a leak) */
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_buf_puts(&b, "198.51.100.1"), 0);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(pe_buf_printf(&b, ", 10.%d.%d.1", (i / 250) % 250, i % 250), 0);
    char got[PE_IP_TEXT_LEN];
    const char *lines[] = {b.data, NULL};
    assert_true(client_of(TRUSTED, "10.0.0.5", lines, got));
    assert_string_equal(got, "198.51.100.1");
    pe_buf_free(&b);
    /* one huge entry */
    char *huge = malloc(60001);
    assert_non_null(huge);
    memset(huge, '1', 60000);
    huge[60000] = '\0';
    const char *huge_lines[] = {huge, NULL};
    assert_false(client_of(TRUSTED, "10.0.0.5", huge_lines, got));
    assert_string_equal(got, "10.0.0.5");
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_parse_and_format),
        cmocka_unit_test(test_cidr_list),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_untrusted_peer_is_the_client),
        cmocka_unit_test(test_walk_right_to_left),
        cmocka_unit_test(test_several_header_lines),
        cmocka_unit_test(test_long_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
