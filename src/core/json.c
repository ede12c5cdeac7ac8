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
 *  6. An arena parse (pe_json_parse_arena) puts every node and string of the tree in one arena,
 *     freed whole: the hooks below route cJSON's allocations there only while that parse runs
 *     on this thread (a thread-local pointer); everywhere else they are malloc and free. A
 *     request of 20 events is some 1 600 allocations and as many frees otherwise.
 *  7. Under AddressSanitizer the arena keeps every allocation a malloc of its own (a list freed
 *     with the arena), so overflows and uses after the arena is freed are still caught.
 *  8. One rule for numbers that are not finite (pe_json_find_nonfinite): cJSON parses 1e400 to
 *     ±inf and prints it as null, so such a value cannot be stored as given; every validator
 *     of untrusted JSON asks this function and names the path it reports, spelled as the
 *     validators spell paths (variants[0].value.n, properties.items[2].price).
 */
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pe/core.h"

#define PE_JSON_MAX_DEPTH 64

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_MALLOC_EACH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_MALLOC_EACH 1
#endif
#endif

#define ARENA_CHUNK_MIN (32 * 1024)

/* One block of the arena: a bump region (or, under ASan, one allocation). */
typedef struct arena_block {
    struct arena_block *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
} arena_block_t;

struct pe_json_arena {
    arena_block_t *blocks; /* newest first */
    size_t next_size;
};

/* The arena the parse running on this thread allocates in, or NULL. */
static _Thread_local pe_json_arena_t *tl_arena;

/* Each thread keeps the largest block of its last arena (up to SPARE_MAX) for the next one:
 * without it every request's blocks went back to the heap's top, which glibc trims, and came
 * back as fresh pages to fault in — slower than the malloc per node the arena replaces. */
#define SPARE_MAX (1024 * 1024)

static pthread_key_t spare_key;

static void spare_free(void *block)
{
    free(block);
}

static arena_block_t *arena_block_new(pe_json_arena_t *a, size_t size)
{
    arena_block_t *b = NULL;
#ifndef ARENA_MALLOC_EACH
    arena_block_t *spare = pthread_getspecific(spare_key);
    if (spare && spare->size >= size) {
        b = spare;
        pthread_setspecific(spare_key, NULL);
    }
#endif
    if (!b) {
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
    }
    b->used = 0;
    b->next = a->blocks;
    a->blocks = b;
    return b;
}

static void *arena_alloc(pe_json_arena_t *a, size_t n)
{
#ifdef ARENA_MALLOC_EACH
    arena_block_t *b = arena_block_new(a, n);
    return b ? b->data : NULL;
#else
    size_t need = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    arena_block_t *b = a->blocks;
    if (!b || b->size - b->used < need) {
        size_t size = a->next_size > need ? a->next_size : need;
        a->next_size = size * 2;
        b = arena_block_new(a, size);
        if (!b)
            return NULL;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
#endif
}

static void *hook_malloc(size_t n)
{
    return tl_arena ? arena_alloc(tl_arena, n) : malloc(n);
}

/* Inside an arena parse cJSON frees only what that parse made (a failed parse's partial tree,
 * or the tree before trailing garbage): it goes with the arena. */
static void hook_free(void *p)
{
    if (!tl_arena)
        free(p);
}

static void install_hooks(void)
{
    if (pthread_key_create(&spare_key, spare_free) != 0)
        abort(); /* only at start-up, and only when the process is out of keys */
    cJSON_Hooks hooks = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&hooks);
}

void pe_json_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_hooks);
}

void pe_json_arena_free(pe_json_arena_t *arena)
{
    if (!arena)
        return;
    for (arena_block_t *b = arena->blocks, *next; b; b = next) {
        next = b->next;
#ifndef ARENA_MALLOC_EACH
        arena_block_t *spare = pthread_getspecific(spare_key);
        if (b->size <= SPARE_MAX && (!spare || spare->size < b->size) &&
            pthread_setspecific(spare_key, b) == 0) {
            free(spare);
            continue;
        }
#endif
        free(b);
    }
    free(arena);
}

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

int pe_json_parse_arena(const char *text, size_t len, pe_json_arena_t **arena, cJSON **out,
                        char *err, size_t errlen)
{
    *arena = NULL;
    *out = NULL;
    pe_json_init();
    pe_json_arena_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return PE_ENOMEM;
    }
    /* nodes of 64 bytes and the strings: about four times the text of an event batch */
    a->next_size = len < ARENA_CHUNK_MIN / 4 ? ARENA_CHUNK_MIN : len * 4;
    tl_arena = a;
    int rc = pe_json_parse(text, len, out, err, errlen);
    tl_arena = NULL;
    if (rc != 0) {
        pe_json_arena_free(a);
        return rc;
    }
    *arena = a;
    return 0;
}

char *pe_json_print(const cJSON *j)
{
    return cJSON_PrintUnformatted(j);
}

/* ---- numbers that are not finite ------------------------------------------------------------ */

const char *pe_json_quote_key(const char *key, char out[PE_JSON_KEY_QUOTE_MAX + 4])
{
    if (!key[0])
        return "\"\"";
    size_t n = 0;
    for (; key[n] && n < PE_JSON_KEY_QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)key[n];
        out[n] = (char)(c < 0x20 || c == 0x7f || c == '\'' ? '?' : c);
    }
    if (key[n]) {
        while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
            n--; /* key[n] continues a sequence: drop its start too */
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Appends ".key" ("key" at the start of an empty path), quoted by pe_json_quote_key, to
 * path[n..cap). Returns the new length (≤ cap - 1). */
static size_t path_key(char *path, size_t n, size_t cap, const char *key)
{
    char buf[PE_JSON_KEY_QUOTE_MAX + 4];
    const char *q = pe_json_quote_key(key, buf);
    int w = snprintf(path + n, cap - n, "%s%s", n ? "." : "", q);
    return w < 0 ? n : n + (size_t)w < cap ? n + (size_t)w : cap - 1;
}

static size_t path_index(char *path, size_t n, size_t cap, size_t i)
{
    int w = snprintf(path + n, cap - n, "[%zu]", i);
    return w < 0 ? n : n + (size_t)w < cap ? n + (size_t)w : cap - 1;
}

/* Depth first, in document order; path[0..n) is j's own path. Recursion is as deep as the
 * tree (pe_json_parse keeps trees within PE_JSON_MAX_DEPTH levels). */
static bool find_nonfinite(const cJSON *j, char *path, size_t n, size_t cap)
{
    if (cJSON_IsNumber(j))
        return !isfinite(j->valuedouble);
    if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
        return false;
    bool object = cJSON_IsObject(j);
    size_t i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        bool number = cJSON_IsNumber(c);
        if (number ? isfinite(c->valuedouble) : !c->child)
            continue; /* the path is spelled only on the way to a finding or into a container */
        size_t m = object ? path_key(path, n, cap, c->string ? c->string : "")
                          : path_index(path, n, cap, i);
        if (number || find_nonfinite(c, path, m, cap))
            return true;
        path[n] = '\0';
    }
    return false;
}

bool pe_json_find_nonfinite(const cJSON *j, const char *prefix, char *path, size_t pathlen)
{
    char scratch[1];
    if (!path || pathlen == 0) {
        path = scratch;
        pathlen = 1;
    }
    int w = snprintf(path, pathlen, "%s", prefix ? prefix : "");
    size_t n = w < 0 ? 0 : (size_t)w < pathlen ? (size_t)w : pathlen - 1;
    path[n] = '\0';
    if (!j || !find_nonfinite(j, path, n, pathlen)) {
        path[n] = '\0';
        return false;
    }
    /* a path cut short by pathlen must not end inside a UTF-8 sequence */
    size_t len = strlen(path);
    if (len == pathlen - 1) {
        size_t k = len;
        while (k > 0 && ((unsigned char)path[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && ((unsigned char)path[k - 1] & 0x80))
            path[k - 1] = '\0';
    }
    return true;
}
