/*
 * content_encoding.c — request bodies sent with Content-Encoding gzip, x-gzip or deflate: the
 * header's parser and a streaming zlib decoder that appends the decoded bytes to the request's
 * body buffer as libmicrohttpd hands over the encoded ones (server.c, routes flagged
 * PE_ROUTE_ENCODED_BODY). zlib does the inflating; nothing here parses deflate itself.
 *
 * What is accepted (decided here, documented in README "Sending events"):
 *  - one coding at most: "gzip" / "x-gzip" (RFC 1952) or "deflate"; "identity" anywhere is
 *    ignored; layered codings ("gzip, gzip"), unknown ones and parameters are refused (415);
 *  - "deflate" is the zlib format (RFC 1950) when its first two bytes are a valid zlib header
 *    (CM 8, CINFO ≤ 7, FCHECK), else raw deflate (RFC 1951), as browsers accept both in
 *    responses (zlib pads a raw stored block with zero bits, so its raw streams never look
 *    like a zlib header);
 *  - gzip members that follow each other are one body (RFC 1952 §2.2, what gzip -d does with
 *    `cat a.gz b.gz`); after the last one, and after the end of a deflate stream, any byte is
 *    trailing garbage (400).
 *
 * Decoder states (one decoder per request body):
 *
 *                 (deflate)                        Z_STREAM_END
 *     new ─────────▶ HEADER ──2 bytes──▶ STREAM ────────────────▶ END ──finish──▶ 0
 *      │  (gzip)                          ▲   ▲                    │
 *      └──────────────────────────────────┘   └───next member──────┘ more bytes (gzip)
 *
 *     any state ──corrupt, truncated, bytes after END (deflate), too big, no memory──▶ FAILED
 *
 *   transition        function                   condition
 *   new → HEADER      pe_http_decoder_new        deflate waits for its first two bytes
 *   new → STREAM      pe_http_decoder_new        gzip: inflateInit2 with the gzip wrapper
 *   HEADER → STREAM   feed → start_deflate       two bytes seen: zlib or raw deflate chosen
 *   STREAM → END      feed → inflate_some        Z_STREAM_END
 *   END → STREAM      feed → inflate_some        gzip and more bytes: the next member
 *   any → FAILED      feed → fail, finish        as above; finish outside END: truncated
 *
 * Invariants:
 *  1. The decoded total never exceeds max + 1: zlib is never given more output room than that,
 *     so a bomb costs at most max + 2 bytes of buffer plus zlib's own state (≈ 40 KB).
 *  2. out is a valid pe_buf_t after every call (data[len] == '\0', len < cap), and out->len
 *     equals the decoded total (out starts empty and only the decoder appends to it).
 *  3. A failure is sticky: the first error code is returned by every later call.
 *  4. After feed returns 0, every byte the input so far can yield is in out (zlib stopped with
 *     output room left), so finish need not call zlib again.
 *  5. The header parser reads nothing past the terminating NUL and allocates nothing.
 */
#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "pe/http.h"

/* ---- the header ------------------------------------------------------------------------------ */

/* tchar of RFC 9110 §5.6.2. */
static bool tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool token_is(const char *p, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(p, want, n) == 0;
}

int pe_http_content_coding(const char *content_encoding, pe_http_coding_t *coding)
{
    int rc = PE_EINVAL;
    pe_http_coding_t found = PE_HTTP_CODING_IDENTITY;
    const char *p = content_encoding ? content_encoding : "";
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *tok = p;
        while (tchar(*p))
            p++;
        size_t n = (size_t)(p - tok);
        while (*p == ' ' || *p == '\t')
            p++;
        if (n == 0 || (*p != ',' && *p != '\0'))
            goto out; /* not a token, or a parameter / junk after it */
        pe_http_coding_t c;
        if (token_is(tok, n, "identity"))
            continue;
        if (token_is(tok, n, "gzip") || token_is(tok, n, "x-gzip"))
            c = PE_HTTP_CODING_GZIP;
        else if (token_is(tok, n, "deflate"))
            c = PE_HTTP_CODING_DEFLATE;
        else
            goto out;
        if (found != PE_HTTP_CODING_IDENTITY)
            goto out; /* a second coding: layered encodings are refused */
        found = c;
    }
    rc = 0;
out:
    *coding = rc == 0 ? found : PE_HTTP_CODING_IDENTITY;
    return rc;
}

const char *pe_http_coding_name(pe_http_coding_t coding)
{
    switch (coding) {
    case PE_HTTP_CODING_GZIP:
        return "gzip";
    case PE_HTTP_CODING_DEFLATE:
        return "deflate";
    default:
        return "identity";
    }
}

/* ---- the decoder ----------------------------------------------------------------------------- */

/* The first allocation of the output, and the least room worth calling zlib with. */
#define INITIAL_CAP ((size_t)16 * 1024)
#define MIN_ROOM    1024u
/* zlib counts in uInt: input is handed over in slices no longer than this. */
#define MAX_SLICE (1u << 30)

typedef enum { ST_HEADER, ST_STREAM, ST_END, ST_FAILED } state_t;

struct pe_http_decoder {
    pe_http_coding_t coding;
    state_t state;
    int rc;          /* the sticky failure (ST_FAILED) */
    const char *why; /* static text for the failure */
    size_t max;
    size_t total; /* decoded bytes so far == out->len */
    bool zinit;   /* strm needs inflateEnd */
    unsigned char hdr[2];
    size_t nhdr;
    z_stream strm;
};

static int fail(pe_http_decoder_t *d, int rc, const char *why)
{
    d->state = ST_FAILED;
    d->rc = rc;
    d->why = why;
    return rc;
}

pe_http_decoder_t *pe_http_decoder_new(pe_http_coding_t coding, size_t max)
{
    if ((coding != PE_HTTP_CODING_GZIP && coding != PE_HTTP_CODING_DEFLATE) || max >= SIZE_MAX / 2)
        return NULL;
    pe_http_decoder_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->coding = coding;
    d->max = max;
    d->why = "";
    d->state = ST_HEADER;
    if (coding == PE_HTTP_CODING_GZIP) {
        /* 16 + 15: the gzip wrapper only (a zlib stream labelled gzip is corrupt) */
        if (inflateInit2(&d->strm, 16 + MAX_WBITS) != Z_OK) {
            free(d);
            return NULL;
        }
        d->zinit = true;
        d->state = ST_STREAM;
    }
    return d;
}

void pe_http_decoder_free(pe_http_decoder_t *d)
{
    if (!d)
        return;
    if (d->zinit)
        inflateEnd(&d->strm);
    free(d);
}

const char *pe_http_decoder_error(const pe_http_decoder_t *d)
{
    return d->why;
}

/* Room for more output: doubles the buffer, never beyond max + 2 bytes (max + 1 decoded bytes,
 * enough to see the limit passed, and the NUL). Returns the room (> 0) or 0 on ENOMEM. */
static size_t output_room(pe_http_decoder_t *d, pe_buf_t *out)
{
    size_t limit = d->max + 2;
    size_t room = out->cap ? out->cap - out->len - 1 : 0;
    if (room < MIN_ROOM && out->cap < limit) {
        size_t cap = out->cap ? out->cap * 2 : INITIAL_CAP;
        if (cap > limit)
            cap = limit;
        char *p = realloc(out->data, cap);
        if (!p)
            return 0;
        if (!out->data)
            p[0] = '\0';
        out->data = p;
        out->cap = cap;
        room = cap - out->len - 1;
    }
    size_t left = d->max + 1 - d->total; /* ≥ 1: feeding stops once total > max */
    if (room > left)
        room = left;
    return room > UINT_MAX ? UINT_MAX : room;
}

/* Inflates in[0..n) into out until the input is used up and zlib has room left (invariant 4). */
static int inflate_some(pe_http_decoder_t *d, const unsigned char *in, size_t n, pe_buf_t *out)
{
    z_stream *z = &d->strm;
    z->next_in = (Bytef *)(uintptr_t)in; /* zlib does not write through next_in */
    z->avail_in = (uInt)n;
    for (;;) {
        if (d->state == ST_END) {
            if (z->avail_in == 0)
                return 0;
            if (d->coding != PE_HTTP_CODING_GZIP)
                return fail(d, PE_EINVAL, "trailing bytes after the end of the stream");
            if (inflateReset(z) != Z_OK) /* the next gzip member */
                return fail(d, PE_EINTERNAL, "inflateReset failed");
            d->state = ST_STREAM;
        }
        size_t room = output_room(d, out);
        if (room == 0)
            return fail(d, PE_ENOMEM, "out of memory");
        z->next_out = (Bytef *)out->data + out->len;
        z->avail_out = (uInt)room;
        int zrc = inflate(z, Z_NO_FLUSH);
        size_t produced = room - z->avail_out;
        out->len += produced;
        out->data[out->len] = '\0';
        d->total += produced;
        if (d->total > d->max)
            return fail(d, PE_ETOOBIG, "the decoded body is too large");
        if (zrc == Z_STREAM_END) {
            d->state = ST_END;
            continue;
        }
        if (zrc == Z_MEM_ERROR)
            return fail(d, PE_ENOMEM, "out of memory");
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
            return fail(d, PE_EINVAL, z->msg ? z->msg : "corrupt data");
        if (z->avail_in == 0 && z->avail_out != 0)
            return 0;
        /* Z_BUF_ERROR with input and room left cannot happen; guard against a loop anyway */
        if (zrc == Z_BUF_ERROR && z->avail_out != 0)
            return fail(d, PE_EINTERNAL, "inflate made no progress");
    }
}

/* Deflate's first two bytes decide between the zlib format and raw deflate. */
static int start_deflate(pe_http_decoder_t *d, pe_buf_t *out)
{
    unsigned cmf = d->hdr[0], flg = d->hdr[1];
    bool zlib = (cmf & 0x0f) == Z_DEFLATED && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
    if (inflateInit2(&d->strm, zlib ? MAX_WBITS : -MAX_WBITS) != Z_OK)
        return fail(d, PE_ENOMEM, "out of memory");
    d->zinit = true;
    d->state = ST_STREAM;
    return inflate_some(d, d->hdr, d->nhdr, out);
}

int pe_http_decoder_feed(pe_http_decoder_t *d, const void *data, size_t size, pe_buf_t *out)
{
    if (d->state == ST_FAILED)
        return d->rc;
    assert(out->len == d->total); /* invariant 2 */
    const unsigned char *p = data;
    while (size && d->state == ST_HEADER) {
        d->hdr[d->nhdr++] = *p++;
        size--;
        if (d->nhdr == sizeof d->hdr) {
            int rc = start_deflate(d, out);
            if (rc != 0)
                return rc;
        }
    }
    while (size) {
        size_t n = size > MAX_SLICE ? MAX_SLICE : size;
        int rc = inflate_some(d, p, n, out);
        if (rc != 0)
            return rc;
        p += n;
        size -= n;
    }
    return 0;
}

int pe_http_decoder_finish(pe_http_decoder_t *d, pe_buf_t *out)
{
    (void)out; /* invariant 4: nothing is left to write */
    if (d->state == ST_FAILED)
        return d->rc;
    if (d->state != ST_END)
        return fail(d, PE_EINVAL, "truncated stream");
    return 0;
}
