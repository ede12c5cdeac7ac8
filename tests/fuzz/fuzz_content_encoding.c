/*
 * fuzz_content_encoding.c — libFuzzer target for the request-body decoder (content_encoding.c):
 * arbitrary bytes decoded as a gzip or deflate body, fed in arbitrary chunks, against a small
 * decoded-size limit; and the Content-Encoding header parser.
 *
 * Input: byte 0 picks the coding (bit 0: gzip / deflate) and the limit (bits 1..7: 1..7748
 * bytes); byte 1 seeds the chunk sizes (0..63 bytes each, so empty chunks occur too); the rest
 * is the body. The same bytes are also parsed as a Content-Encoding value (in an exactly-sized
 * heap copy, so ASan sees a read past its end).
 *
 * Invariants asserted (abort() on violation, so the fuzzer reports it):
 *  1. Bounded: never more than limit + 1 decoded bytes, a buffer capacity never above
 *     limit + 2, and a success never above limit.
 *  2. The verdict is one of 0, PE_EINVAL, PE_ETOOBIG, and it — and on success the decoded
 *     bytes — do not depend on how the body was cut into chunks (compared with one chunk).
 *  3. A failure is sticky: feeding more after it returns the same code and appends nothing.
 *  4. Whatever the body, compressing it with zlib in the chosen coding and decoding that in the
 *     same chunks gives it back (or PE_ETOOBIG when it is longer than the limit).
 *  5. The header parser is deterministic and refuses (PE_EINVAL, identity) or gives a coding.
 *
 * Builds with clang -fsanitize=fuzzer, or with any C compiler plus replay_main.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "pe/http.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_content_encoding: invariant failed at line %d: %s\n", __LINE__,  \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Decodes body in chunks of pseudo-random sizes from seed (seed 0: one chunk). */
static int decode(pe_http_coding_t coding, size_t limit, uint8_t seed, const uint8_t *body,
                  size_t n, pe_buf_t *out)
{
    pe_http_decoder_t *d = pe_http_decoder_new(coding, limit);
    CHECK(d != NULL);
    uint32_t x = 0x9e3779b9u ^ seed;
    size_t at = 0;
    int rc = 0;
    while (rc == 0 && at < n) {
        size_t len = seed ? next_rand(&x) % 64 : n;
        if (len > n - at)
            len = n - at;
        rc = pe_http_decoder_feed(d, body + at, len, out);
        at += len;
        CHECK(out->cap <= limit + 2);
        CHECK(out->len <= limit + 1);
        CHECK(!out->data || (out->len < out->cap && out->data[out->len] == '\0'));
    }
    if (rc == 0)
        rc = pe_http_decoder_finish(d, out);
    if (rc != 0) {
        size_t len = out->len;
        CHECK(pe_http_decoder_feed(d, body, n, out) == rc); /* sticky */
        CHECK(pe_http_decoder_finish(d, out) == rc);
        CHECK(out->len == len);
        CHECK(pe_http_decoder_error(d)[0] != '\0');
    }
    pe_http_decoder_free(d);
    CHECK(rc == 0 || rc == PE_EINVAL || rc == PE_ETOOBIG);
    if (rc == 0)
        CHECK(out->len <= limit);
    return rc;
}

static void compress_into(pe_http_coding_t coding, int raw, const uint8_t *in, size_t n,
                          pe_buf_t *out)
{
    int bits = coding == PE_HTTP_CODING_GZIP ? 16 + MAX_WBITS : raw ? -MAX_WBITS : MAX_WBITS;
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t bound = deflateBound(&z, (uLong)n);
    CHECK(pe_buf_reserve(out, bound) == 0);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)bound;
    CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out->len = bound - z.avail_out;
    out->data[out->len] = '\0';
    deflateEnd(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the header parser, on the whole input */
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    pe_http_coding_t c1, c2;
    int h1 = pe_http_content_coding(text, &c1), h2 = pe_http_content_coding(text, &c2);
    CHECK(h1 == h2 && c1 == c2);
    CHECK(h1 == 0 || (h1 == PE_EINVAL && c1 == PE_HTTP_CODING_IDENTITY));
    CHECK(c1 < PE_HTTP_CODING_COUNT);
    free(text);

    if (size < 2)
        return 0;
    pe_http_coding_t coding = (data[0] & 1) ? PE_HTTP_CODING_DEFLATE : PE_HTTP_CODING_GZIP;
    size_t limit = (size_t)(data[0] >> 1) * 61 + 1;
    uint8_t seed = data[1];
    const uint8_t *body = data + 2;
    size_t n = size - 2;

    pe_buf_t chunked = PE_BUF_INIT, whole = PE_BUF_INIT;
    int rc = decode(coding, limit, seed, body, n, &chunked);
    int rc_whole = decode(coding, limit, 0, body, n, &whole);
    CHECK(rc == rc_whole);
    if (rc == 0)
        CHECK(chunked.len == whole.len &&
              (chunked.len == 0 || memcmp(chunked.data, whole.data, chunked.len) == 0));
    pe_buf_free(&chunked);
    pe_buf_free(&whole);

    /* the body itself, compressed: always decodes back (zlib and raw for deflate) */
    for (int raw = 0; raw <= (coding == PE_HTTP_CODING_DEFLATE); raw++) {
        pe_buf_t enc = PE_BUF_INIT, dec = PE_BUF_INIT;
        compress_into(coding, raw, body, n, &enc);
        rc = decode(coding, limit, seed, (const uint8_t *)enc.data, enc.len, &dec);
        if (n <= limit) {
            CHECK(rc == 0);
            CHECK(dec.len == n && (n == 0 || memcmp(dec.data, body, n) == 0));
        } else {
            CHECK(rc == PE_ETOOBIG);
        }
        pe_buf_free(&enc);
        pe_buf_free(&dec);
    }
    return 0;
}
