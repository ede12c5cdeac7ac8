/*
 * test_content_encoding.c — the Content-Encoding parser and the streaming zlib decoder of
 * request bodies (src/http/content_encoding.c). The encoded inputs are made here with zlib's
 * deflate, in the three wrappers HTTP clients send: gzip, zlib ("deflate") and raw deflate.
 *
 * Invariants checked:
 *  1. gzip, x-gzip, zlib-wrapped and raw deflate decode to the original bytes, whatever the
 *     chunk boundaries: split at every byte, and one byte at a time.
 *  2. The decoded size is bounded: a 1 MB bomb against a 512 KB limit stops with PE_ETOOBIG,
 *     having decoded at most limit + 1 bytes into a buffer whose capacity never passed
 *     limit + 2; a body of exactly the limit decodes, one byte more does not.
 *  3. Corrupt data, a bad gzip CRC, a preset-dictionary zlib stream, every truncation (the empty
 *     body included) and trailing bytes after the end are PE_EINVAL with a reason; a failure is
 *     sticky.
 *  4. Concatenated gzip members are one body (RFC 1952 §2.2); two zlib streams are not.
 *  5. The header: case-insensitive tokens, optional whitespace, empty list elements and
 *     "identity" ignored; unknown codings, two codings, parameters and junk refused.
 */
#include <stdlib.h>
#include <string.h>

#include "pe/http.h"
#include "pe_test.h"

#define KB ((size_t)1024)

static const char *wrap_name(pe_test_deflate_format_t w)
{
    return w == PE_TEST_GZIP ? "gzip" : w == PE_TEST_ZLIB ? "zlib" : "raw deflate";
}

static pe_http_coding_t wrap_coding(pe_test_deflate_format_t w)
{
    return w == PE_TEST_GZIP ? PE_HTTP_CODING_GZIP : PE_HTTP_CODING_DEFLATE;
}

/* Some JSON that compresses as a real batch does. */
static pe_buf_t sample_json(size_t events)
{
    pe_buf_t b = PE_BUF_INIT;
    pe_buf_puts(&b, "{\"events\":[");
    for (size_t i = 0; i < events; i++)
        pe_buf_printf(&b,
                      "%s{\"eventId\":\"00000000-0000-4000-8000-%012zu\",\"name\":\"storefront."
                      "cart.item_added\",\"properties\":{\"productId\":\"sku-%zu\",\"quantity\":%zu"
                      "}}",
                      i ? "," : "", i, i % 97, i % 7 + 1);
    pe_buf_puts(&b, "]}");
    return b;
}

/* Decodes the chunks of enc split at the given offsets (ascending, within enc) with limit max.
 * Returns the first non-zero code of feed or finish, or 0; *out holds what was decoded. */
static int decode_split(pe_http_coding_t coding, const pe_buf_t *enc, const size_t *cuts,
                        size_t ncuts, size_t max, pe_buf_t *out)
{
    pe_http_decoder_t *d = pe_http_decoder_new(coding, max);
    assert_non_null(d);
    assert_string_equal(pe_http_decoder_error(d), "");
    int rc = 0;
    size_t from = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : enc->len;
        rc = pe_http_decoder_feed(d, enc->data + from, to - from, out);
        from = to;
        /* invariant 2 of content_encoding.c, after every call */
        if (out->data) {
            assert_true(out->len < out->cap);
            assert_int_equal(out->data[out->len], '\0');
        }
        assert_true(out->cap <= max + 2);
    }
    if (rc == 0)
        rc = pe_http_decoder_finish(d, out);
    if (rc != 0)
        assert_true(pe_http_decoder_error(d)[0] != '\0');
    pe_http_decoder_free(d);
    return rc;
}

static int decode_whole(pe_http_coding_t coding, const pe_buf_t *enc, size_t max, pe_buf_t *out)
{
    return decode_split(coding, enc, NULL, 0, max, out);
}

static void expect_bytes(const pe_buf_t *got, const pe_buf_t *want, const char *what)
{
    if (got->len != want->len || (want->len && memcmp(got->data, want->data, want->len) != 0))
        fail_msg("%s: decoded %zu bytes, want %zu (or the bytes differ)", what, got->len,
                 want->len);
}

/* ---- header ---------------------------------------------------------------------------------- */

static void test_header(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int rc;
        pe_http_coding_t coding;
    } cases[] = {
        {NULL, 0, PE_HTTP_CODING_IDENTITY},
        {"", 0, PE_HTTP_CODING_IDENTITY},
        {"  ,\t, ", 0, PE_HTTP_CODING_IDENTITY},
        {"identity", 0, PE_HTTP_CODING_IDENTITY},
        {"IDENTITY, identity", 0, PE_HTTP_CODING_IDENTITY},
        {"gzip", 0, PE_HTTP_CODING_GZIP},
        {"GZip", 0, PE_HTTP_CODING_GZIP},
        {"x-gzip", 0, PE_HTTP_CODING_GZIP},
        {"X-GZIP", 0, PE_HTTP_CODING_GZIP},
        {" \tgzip\t ", 0, PE_HTTP_CODING_GZIP},
        {"deflate", 0, PE_HTTP_CODING_DEFLATE},
        {"Deflate", 0, PE_HTTP_CODING_DEFLATE},
        {"identity, gzip", 0, PE_HTTP_CODING_GZIP},
        {"gzip,identity", 0, PE_HTTP_CODING_GZIP},
        {",, deflate ,", 0, PE_HTTP_CODING_DEFLATE},
        {"br", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"zstd", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"compress", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"x-compress", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzip, br", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzip, gzip", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"deflate, gzip", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzip deflate", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzip;q=1", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzipx", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzi", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"\"gzip\"", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"gzip\x01", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"g\xc3\xbczip", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
        {"*", PE_EINVAL, PE_HTTP_CODING_IDENTITY},
    };
    for (size_t i = 0; i < PE_ARRAY_LEN(cases); i++) {
        pe_http_coding_t c = PE_HTTP_CODING_DEFLATE;
        char *copy = cases[i].value ? strdup(cases[i].value) : NULL; /* exact heap size */
        int rc = pe_http_content_coding(copy, &c);
        free(copy);
        if (rc != cases[i].rc || c != cases[i].coding)
            fail_msg("Content-Encoding: %s → rc %d coding %s; want rc %d coding %s",
                     cases[i].value ? cases[i].value : "(absent)", rc, pe_http_coding_name(c),
                     cases[i].rc, pe_http_coding_name(cases[i].coding));
    }
    assert_string_equal(pe_http_coding_name(PE_HTTP_CODING_GZIP), "gzip");
    assert_string_equal(pe_http_coding_name(PE_HTTP_CODING_DEFLATE), "deflate");
    assert_string_equal(pe_http_coding_name(PE_HTTP_CODING_IDENTITY), "identity");
    /* identity needs no decoder, and none is made for it or for an impossible limit */
    assert_null(pe_http_decoder_new(PE_HTTP_CODING_IDENTITY, 1024));
    assert_null(pe_http_decoder_new(PE_HTTP_CODING_GZIP, SIZE_MAX));
    pe_http_decoder_free(NULL);
}

/* ---- round trips ----------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    pe_buf_t json = sample_json(2000); /* ≈ 250 KB, several buffer doublings */
    /* incompressible bytes: stored blocks, output that grows as fast as the input */
    pe_buf_t noise = PE_BUF_INIT;
    assert_int_equal(pe_buf_reserve(&noise, 100 * KB), 0);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < 100 * KB; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.data[i] = (char)(x & 0xff);
    }
    noise.len = 100 * KB;
    noise.data[noise.len] = '\0';
    const pe_buf_t *inputs[] = {&json, &noise};
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        for (size_t k = 0; k < PE_ARRAY_LEN(inputs); k++) {
            pe_buf_t enc = pe_test_compress(w, inputs[k]->data, inputs[k]->len);
            pe_buf_t out = PE_BUF_INIT;
            int rc = decode_whole(wrap_coding(w), &enc, 512 * KB, &out);
            if (rc != 0)
                fail_msg("%s input %zu: rc %d", wrap_name(w), k, rc);
            expect_bytes(&out, inputs[k], wrap_name(w));
            pe_buf_free(&out);
            /* a limit of exactly the decoded size is enough; one byte less is not */
            rc = decode_whole(wrap_coding(w), &enc, inputs[k]->len, &out);
            assert_int_equal(rc, 0);
            expect_bytes(&out, inputs[k], wrap_name(w));
            pe_buf_free(&out);
            rc = decode_whole(wrap_coding(w), &enc, inputs[k]->len - 1, &out);
            assert_int_equal(rc, PE_ETOOBIG);
            assert_true(out.len <= inputs[k]->len && out.cap <= inputs[k]->len + 1);
            pe_buf_free(&out);
            pe_buf_free(&enc);
        }
    }
    /* an empty body compressed is a valid (small) stream that decodes to nothing */
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        pe_buf_t enc = pe_test_compress(w, "", 0);
        pe_buf_t out = PE_BUF_INIT;
        assert_int_equal(decode_whole(wrap_coding(w), &enc, 16, &out), 0);
        assert_int_equal(out.len, 0);
        pe_buf_free(&out);
        pe_buf_free(&enc);
    }
    pe_buf_free(&json);
    pe_buf_free(&noise);
}

static void test_every_chunk_boundary(void **state)
{
    (void)state;
    pe_buf_t json = sample_json(40);
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        pe_buf_t enc = pe_test_compress(w, json.data, json.len);
        /* two chunks, cut at every byte (0 and len: one empty chunk) */
        for (size_t cut = 0; cut <= enc.len; cut++) {
            pe_buf_t out = PE_BUF_INIT;
            int rc = decode_split(wrap_coding(w), &enc, &cut, 1, 64 * KB, &out);
            if (rc != 0)
                fail_msg("%s cut at %zu of %zu: rc %d", wrap_name(w), cut, enc.len, rc);
            expect_bytes(&out, &json, wrap_name(w));
            pe_buf_free(&out);
        }
        /* three chunks around the header (deflate decides zlib or raw on its first 2 bytes) */
        for (size_t a = 0; a <= 3; a++) {
            for (size_t b = a; b <= 4; b++) {
                size_t cuts[] = {a, b};
                pe_buf_t out = PE_BUF_INIT;
                assert_int_equal(decode_split(wrap_coding(w), &enc, cuts, 2, 64 * KB, &out), 0);
                expect_bytes(&out, &json, wrap_name(w));
                pe_buf_free(&out);
            }
        }
        /* one byte at a time */
        size_t *cuts = malloc(enc.len * sizeof *cuts);
        assert_non_null(cuts);
        for (size_t i = 0; i < enc.len; i++)
            cuts[i] = i + 1;
        pe_buf_t out = PE_BUF_INIT;
        assert_int_equal(decode_split(wrap_coding(w), &enc, cuts, enc.len - 1, 64 * KB, &out), 0);
        expect_bytes(&out, &json, wrap_name(w));
        pe_buf_free(&out);
        free(cuts);
        pe_buf_free(&enc);
    }
    pe_buf_free(&json);
}

/* ---- limits ---------------------------------------------------------------------------------- */

static void test_bomb(void **state)
{
    (void)state;
    const size_t size = 1024 * KB, limit = 512 * KB;
    char *zeros = calloc(1, size);
    assert_non_null(zeros);
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        pe_buf_t enc = pe_test_compress(w, zeros, size);
        assert_true(enc.len < 2 * KB); /* ≈ 1 KB on the wire */
        /* whole, and in MHD-sized chunks: either way the decoder stops at the limit */
        for (size_t chunk = 0; chunk <= 1; chunk++) {
            size_t cuts[64], ncuts = 0;
            for (size_t at = 100; chunk && at < enc.len && ncuts < PE_ARRAY_LEN(cuts); at += 100)
                cuts[ncuts++] = at;
            pe_buf_t out = PE_BUF_INIT;
            int rc = decode_split(wrap_coding(w), &enc, cuts, ncuts, limit, &out);
            if (rc != PE_ETOOBIG)
                fail_msg("%s bomb: rc %d, want PE_ETOOBIG", wrap_name(w), rc);
            /* peak memory: never more than the limit + 1 decoded byte, + the NUL */
            assert_true(out.len <= limit + 1);
            assert_true(out.cap <= limit + 2);
            pe_buf_free(&out);
        }
        /* a failure is sticky, and feeding more consumes nothing */
        pe_http_decoder_t *d = pe_http_decoder_new(wrap_coding(w), limit);
        pe_buf_t out = PE_BUF_INIT;
        assert_int_equal(pe_http_decoder_feed(d, enc.data, enc.len, &out), PE_ETOOBIG);
        size_t len = out.len, cap = out.cap;
        assert_int_equal(pe_http_decoder_feed(d, enc.data, enc.len, &out), PE_ETOOBIG);
        assert_int_equal(pe_http_decoder_finish(d, &out), PE_ETOOBIG);
        assert_int_equal(out.len, len);
        assert_int_equal(out.cap, cap);
        assert_non_null(strstr(pe_http_decoder_error(d), "too large"));
        pe_http_decoder_free(d);
        pe_buf_free(&out);
        pe_buf_free(&enc);
    }
    free(zeros);
}

/* ---- malformed streams ----------------------------------------------------------------------- */

static void test_corrupt(void **state)
{
    (void)state;
    pe_buf_t json = sample_json(50);
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        pe_buf_t enc = pe_test_compress(w, json.data, json.len);
        pe_buf_t out = PE_BUF_INIT;
        /* a flipped byte in the middle: a deflate error, or (gzip, zlib) the check fails */
        size_t flips = 0, refused = 0;
        for (size_t at = 12; at + 12 < enc.len; at += 7) {
            enc.data[at] ^= 0x5a;
            int rc = decode_whole(wrap_coding(w), &enc, 64 * KB, &out);
            enc.data[at] ^= 0x5a;
            pe_buf_free(&out);
            flips++;
            refused += rc != 0;
            /* a flip may also make a long run of output: the limit stops it */
            if (rc != 0 && rc != PE_EINVAL && rc != PE_ETOOBIG)
                fail_msg("%s flip at %zu: rc %d", wrap_name(w), at, rc);
        }
        /* raw deflate has no check value: a flip may decode to other bytes (never a crash) */
        if (w != PE_TEST_RAW_DEFLATE)
            assert_int_equal(refused, flips);
        if (w != PE_TEST_RAW_DEFLATE) {
            /* the trailer's check value (gzip CRC-32, zlib Adler-32) */
            enc.data[enc.len - 5] ^= 1;
            assert_int_equal(decode_whole(wrap_coding(w), &enc, 64 * KB, &out), PE_EINVAL);
            pe_buf_free(&out);
            enc.data[enc.len - 5] ^= 1;
        }
        if (w == PE_TEST_GZIP) {
            /* ISIZE (the length mod 2^32) */
            enc.data[enc.len - 1] ^= 1;
            assert_int_equal(decode_whole(wrap_coding(w), &enc, 64 * KB, &out), PE_EINVAL);
            pe_buf_free(&out);
            enc.data[enc.len - 1] ^= 1;
        }
        pe_buf_free(&enc);
    }
    /* not compressed at all */
    pe_buf_t plain = PE_BUF_INIT;
    pe_buf_puts(&plain, "{\"events\":[]}");
    pe_buf_t out = PE_BUF_INIT;
    assert_int_equal(decode_whole(PE_HTTP_CODING_GZIP, &plain, 64 * KB, &out), PE_EINVAL);
    pe_buf_free(&out);
    /* a zlib stream labelled gzip, and a gzip stream labelled deflate */
    pe_buf_t zl = pe_test_compress(PE_TEST_ZLIB, json.data, json.len);
    pe_buf_t gz = pe_test_compress(PE_TEST_GZIP, json.data, json.len);
    assert_int_equal(decode_whole(PE_HTTP_CODING_GZIP, &zl, 64 * KB, &out), PE_EINVAL);
    pe_buf_free(&out);
    assert_int_equal(decode_whole(PE_HTTP_CODING_DEFLATE, &gz, 64 * KB, &out), PE_EINVAL);
    pe_buf_free(&out);
    /* a zlib header asking for a preset dictionary (FDICT): nobody shares one with us */
    pe_buf_t dict = PE_BUF_INIT;
    unsigned cmf = 0x78, flg = 0x20; /* FDICT */
    while ((cmf * 256 + flg) % 31)
        flg++;
    pe_buf_printf(&dict, "%c%c", (char)cmf, (char)flg);
    pe_buf_append(&dict, "\x01\x02\x03\x04\x4b\x04\x00", 7);
    pe_http_decoder_t *d = pe_http_decoder_new(PE_HTTP_CODING_DEFLATE, 64 * KB);
    int rc = pe_http_decoder_feed(d, dict.data, dict.len, &out);
    if (rc == 0)
        rc = pe_http_decoder_finish(d, &out);
    assert_int_equal(rc, PE_EINVAL);
    assert_true(pe_http_decoder_error(d)[0] != '\0');
    /* sticky */
    assert_int_equal(pe_http_decoder_feed(d, gz.data, gz.len, &out), PE_EINVAL);
    assert_int_equal(pe_http_decoder_finish(d, &out), PE_EINVAL);
    pe_http_decoder_free(d);
    pe_buf_free(&out);
    pe_buf_free(&dict);
    pe_buf_free(&zl);
    pe_buf_free(&gz);
    pe_buf_free(&plain);
    pe_buf_free(&json);
}

static void test_truncated(void **state)
{
    (void)state;
    pe_buf_t json = sample_json(30);
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        pe_buf_t enc = pe_test_compress(w, json.data, json.len);
        /* every proper prefix, the empty body included */
        for (size_t n = 0; n < enc.len; n++) {
            pe_buf_t prefix = {.data = enc.data, .len = n, .cap = n + 1};
            pe_buf_t out = PE_BUF_INIT;
            pe_http_decoder_t *d = pe_http_decoder_new(wrap_coding(w), 64 * KB);
            int rc = pe_http_decoder_feed(d, prefix.data, prefix.len, &out);
            assert_true(rc == 0 || rc == PE_EINVAL);
            if (rc == 0)
                assert_int_equal(pe_http_decoder_finish(d, &out), PE_EINVAL);
            if (rc == 0 && n > 0 && n + 8 < enc.len)
                assert_non_null(strstr(pe_http_decoder_error(d), "truncated"));
            pe_http_decoder_free(d);
            pe_buf_free(&out);
        }
        pe_buf_free(&enc);
    }
    pe_buf_free(&json);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    pe_buf_t json = sample_json(10);
    static const char *const tails[] = {"x", "\n", "\0", "\0\0\0\0\0\0\0\0", "{\"events\":[]}"};
    static const size_t tail_len[] = {1, 1, 1, 8, 13};
    for (pe_test_deflate_format_t w = PE_TEST_GZIP; w <= PE_TEST_RAW_DEFLATE; w++) {
        pe_buf_t enc = pe_test_compress(w, json.data, json.len);
        for (size_t t = 0; t < PE_ARRAY_LEN(tails); t++) {
            pe_buf_t bad = PE_BUF_INIT;
            pe_buf_append(&bad, enc.data, enc.len);
            pe_buf_append(&bad, tails[t], tail_len[t]);
            /* in one piece, and with the garbage in a chunk of its own */
            for (size_t split = 0; split <= 1; split++) {
                size_t cut = enc.len;
                pe_buf_t out = PE_BUF_INIT;
                int rc = decode_split(wrap_coding(w), &bad, &cut, split, 64 * KB, &out);
                if (rc != PE_EINVAL)
                    fail_msg("%s + %zu trailing bytes (tail %zu): rc %d", wrap_name(w), tail_len[t],
                             t, rc);
                pe_buf_free(&out);
            }
            pe_buf_free(&bad);
        }
        pe_buf_free(&enc);
    }
    /* the reason names it, for deflate (gzip reads the garbage as a next member's header) */
    pe_buf_t enc = pe_test_compress(PE_TEST_ZLIB, json.data, json.len);
    pe_buf_append(&enc, "x", 1);
    pe_http_decoder_t *d = pe_http_decoder_new(PE_HTTP_CODING_DEFLATE, 64 * KB);
    pe_buf_t out = PE_BUF_INIT;
    assert_int_equal(pe_http_decoder_feed(d, enc.data, enc.len, &out), PE_EINVAL);
    assert_non_null(strstr(pe_http_decoder_error(d), "trailing"));
    pe_http_decoder_free(d);
    pe_buf_free(&out);
    pe_buf_free(&enc);
    pe_buf_free(&json);
}

/* Decision: gzip members that follow each other are one body, as gzip -d reads `cat a.gz
 * b.gz`; two zlib streams are trailing garbage. */
static void test_concatenated_members(void **state)
{
    (void)state;
    pe_buf_t a = sample_json(5), b = sample_json(9);
    pe_buf_t both = PE_BUF_INIT;
    pe_buf_append(&both, a.data, a.len);
    pe_buf_append(&both, b.data, b.len);
    pe_buf_t ga = pe_test_compress(PE_TEST_GZIP, a.data, a.len);
    pe_buf_t gb = pe_test_compress(PE_TEST_GZIP, b.data, b.len);
    pe_buf_t g0 = pe_test_compress(PE_TEST_GZIP, "", 0);
    pe_buf_t members = PE_BUF_INIT;
    pe_buf_append(&members, ga.data, ga.len);
    pe_buf_append(&members, g0.data, g0.len); /* an empty member between them */
    pe_buf_append(&members, gb.data, gb.len);
    for (size_t cut = 0; cut <= members.len; cut++) {
        pe_buf_t out = PE_BUF_INIT;
        int rc = decode_split(PE_HTTP_CODING_GZIP, &members, &cut, 1, 64 * KB, &out);
        if (rc != 0)
            fail_msg("gzip members cut at %zu: rc %d", cut, rc);
        expect_bytes(&out, &both, "gzip members");
        pe_buf_free(&out);
    }
    /* the limit counts across members */
    pe_buf_t out = PE_BUF_INIT;
    assert_int_equal(decode_whole(PE_HTTP_CODING_GZIP, &members, both.len - 1, &out), PE_ETOOBIG);
    pe_buf_free(&out);
    /* a second member cut short is a truncated body */
    pe_buf_t short_member = {.data = members.data, .len = members.len - 3, .cap = members.len};
    assert_int_equal(decode_whole(PE_HTTP_CODING_GZIP, &short_member, 64 * KB, &out), PE_EINVAL);
    pe_buf_free(&out);

    pe_buf_t za = pe_test_compress(PE_TEST_ZLIB, a.data, a.len);
    pe_buf_t zb = pe_test_compress(PE_TEST_ZLIB, b.data, b.len);
    pe_buf_t zz = PE_BUF_INIT;
    pe_buf_append(&zz, za.data, za.len);
    pe_buf_append(&zz, zb.data, zb.len);
    assert_int_equal(decode_whole(PE_HTTP_CODING_DEFLATE, &zz, 64 * KB, &out), PE_EINVAL);
    pe_buf_free(&out);

    pe_buf_t *bufs[] = {&a, &b, &both, &ga, &gb, &g0, &members, &za, &zb, &zz};
    for (size_t i = 0; i < PE_ARRAY_LEN(bufs); i++)
        pe_buf_free(bufs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_chunk_boundary),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_concatenated_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
