/*
 * audit.c — the tamper-evident audit trail: the canonical form of an event and its SHA-256
 * chain, verification of every chain, and the streamed export (CSV / JSON lines).
 *
 * Invariants:
 *  1. hash(e) = SHA-256(canonical(e) || previous hash of the same ChangeSet); the first event of a
 *     ChangeSet chains to "". canonical() is versioned ("pe-audit-v1"), length-prefixes every
 *     field (no ambiguity between "ab"+"c" and "a"+"bc") and writes metadata as JSON with keys
 *     sorted bytewise and numbers in one fixed format, so what is read back from jsonb hashes
 *     to what was written.
 *  2. verify reads every chain in (store, changeset, seq) order a page at a time (keyset
 *     pagination: memory bounded by a page) and names the first broken link: a hash that does
 *     not match the row, a previous hash that is not the previous row's, a gap in seq, or a
 *     chain whose end is not the ChangeSet's recorded head (a deleted tail).
 *  3. The export holds no connection between reads and at most one page of rows in memory.
 *  4. CSV is RFC 4180 (CRLF, quotes doubled); a cell starting with = + - @ tab or CR is
 *     prefixed with ' so that a spreadsheet shows it instead of evaluating it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "changeset_internal.h"

#define PAGE_ROWS          500 /* the LIMIT of fetch_page */
#define ACQUIRE_TIMEOUT_MS 5000

/* ---- canonical form and hash ----------------------------------------------------------------- */

static int put_field(pe_buf_t *b, const char *s)
{
    if (!s)
        return pe_buf_puts(b, "-1:\n");
    size_t n = strlen(s);
    int rc = pe_buf_printf(b, "%zu:", n);
    rc = rc ? rc : pe_buf_append(b, s, n);
    return rc ? rc : pe_buf_puts(b, "\n");
}

static int cmp_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static int canonical_json(const cJSON *v, pe_buf_t *b, int depth)
{
    if (depth > 32)
        return PE_EINVAL;
    if (cJSON_IsObject(v)) {
        size_t n = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            n++;
        const cJSON **kids = n ? malloc(n * sizeof *kids) : NULL;
        if (n && !kids)
            return PE_ENOMEM;
        size_t i = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            kids[i++] = c;
        if (n)
            qsort(kids, n, sizeof *kids, cmp_keys);
        int rc = pe_buf_puts(b, "{");
        for (i = 0; rc == 0 && i < n; i++) {
            const char *k = kids[i]->string ? kids[i]->string : "";
            rc = i ? pe_buf_puts(b, ",") : 0;
            rc = rc ? rc : pe_buf_json_string(b, k, strlen(k));
            rc = rc ? rc : pe_buf_puts(b, ":");
            rc = rc ? rc : canonical_json(kids[i], b, depth + 1);
        }
        free(kids);
        return rc ? rc : pe_buf_puts(b, "}");
    }
    if (cJSON_IsArray(v)) {
        int rc = pe_buf_puts(b, "[");
        for (const cJSON *c = v->child; rc == 0 && c; c = c->next) {
            rc = c != v->child ? pe_buf_puts(b, ",") : 0;
            rc = rc ? rc : canonical_json(c, b, depth + 1);
        }
        return rc ? rc : pe_buf_puts(b, "]");
    }
    if (cJSON_IsString(v))
        return pe_buf_json_string(b, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d))
            return pe_buf_puts(b, "null");
        if (d == floor(d) && fabs(d) < 1e15)
            return pe_buf_printf(b, "%.0f", d);
        return pe_buf_printf(b, "%.17g", d);
    }
    if (cJSON_IsTrue(v))
        return pe_buf_puts(b, "true");
    if (cJSON_IsFalse(v))
        return pe_buf_puts(b, "false");
    return pe_buf_puts(b, "null");
}

int pe_changeset_audit_metadata_text(const cJSON *metadata, pe_buf_t *out)
{
    if (!metadata)
        return pe_buf_puts(out, "{}");
    return canonical_json(metadata, out, 0);
}

int pe_changeset_audit_canonical(const pe_changeset_audit_record_t *r, pe_buf_t *out)
{
    char seq[32], ts[32];
    snprintf(seq, sizeof seq, "%lld", (long long)r->seq);
    snprintf(ts, sizeof ts, "%lld", (long long)r->occurred_us);
    int rc = pe_buf_puts(out, "pe-audit-v1\n");
    const char *fields[] = {
        r->id,       r->changeset_id, r->store_id,       seq,          ts,       r->actor_type,
        r->actor_id, r->action,       r->previous_state, r->new_state, r->reason};
    for (size_t i = 0; rc == 0 && i < PE_ARRAY_LEN(fields); i++)
        rc = put_field(out, fields[i]);
    pe_buf_t meta = PE_BUF_INIT;
    rc = rc ? rc : pe_changeset_audit_metadata_text(r->metadata, &meta);
    rc = rc ? rc : put_field(out, meta.data ? meta.data : "{}");
    pe_buf_free(&meta);
    return rc;
}

int pe_changeset_audit_hash(const pe_changeset_audit_record_t *r, const char *prev_hash,
                            char out[PE_AUDIT_HASH_LEN])
{
    pe_buf_t b = PE_BUF_INIT;
    int rc = pe_changeset_audit_canonical(r, &b);
    rc = rc ? rc : put_field(&b, prev_hash ? prev_hash : "");
    if (rc == 0) {
        unsigned char digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(digest, (const unsigned char *)b.data, b.len);
        sodium_bin2hex(out, PE_AUDIT_HASH_LEN, digest, sizeof digest);
    }
    pe_buf_free(&b);
    return rc;
}

/* ---- CSV ----------------------------------------------------------------------------------------
 */

/* Whether a spreadsheet could read s as a formula: its first character after any whitespace is
 * = + - @ or | (DDE), in ASCII or full width (＝ ＋ － ＠ ｜, which some spreadsheets fold to
 * ASCII), or it starts with a tab or CR (OWASP's CSV injection list, and a leading space, which
 * spreadsheets skip before looking for a formula). */
static bool looks_like_formula(const char *s)
{
    static const char *const WIDE[] = {"\xEF\xBC\x9D", "\xEF\xBC\x8B", "\xEF\xBC\x8D",
                                       "\xEF\xBC\xA0", "\xEF\xBD\x9C"};
    if (s[0] == '\t' || s[0] == '\r')
        return true;
    s += strspn(s, " \t\r\n\v\f");
    if (strchr("=+-@|", s[0]) && s[0])
        return true;
    for (size_t i = 0; i < PE_ARRAY_LEN(WIDE); i++)
        if (strncmp(s, WIDE[i], 3) == 0)
            return true;
    return false;
}

int pe_changeset_csv_cell(pe_buf_t *b, const char *s)
{
    if (!s)
        s = "";
    bool formula = looks_like_formula(s);
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    int rc = quote ? pe_buf_puts(b, "\"") : 0;
    if (rc == 0 && formula)
        rc = pe_buf_puts(b, "'");
    for (const char *p = s; rc == 0 && *p; p++)
        rc = *p == '"' ? pe_buf_puts(b, "\"\"") : pe_buf_append(b, p, 1);
    if (rc == 0 && quote)
        rc = pe_buf_puts(b, "\"");
    return rc;
}

/* ---- shared row reading --------------------------------------------------------------------- */

/* Columns of ROW_COLUMNS, in order. */
enum {
    C_STORE,
    C_ID,
    C_CHANGESET,
    C_SEQ,
    C_US,
    C_ACTOR_TYPE,
    C_ACTOR_ID,
    C_ACTION,
    C_PREV_STATE,
    C_NEW_STATE,
    C_REASON,
    C_METADATA,
    C_PREV_HASH,
    C_HASH,
    C_NCOLS
};

#define ROW_COLUMNS                                                                                \
    "a.store_id, a.id, a.changeset_id, a.seq, "                                                    \
    "(extract(epoch FROM a.occurred_at) * 1000000)::bigint, a.actor_type, a.actor_id, a.action, "  \
    "a.previous_state, a.new_state, a.reason, a.metadata::text, a.prev_hash, a.hash"

/* RFC 3339 with microseconds, UTC. */
static void format_us(int64_t us, char out[40])
{
    int64_t days = us / 86400000000LL, rem = us % 86400000000LL;
    if (rem < 0) {
        rem += 86400000000LL;
        days--;
    }
    int64_t y;
    int m, d;
    pe_civil_from_days(days, &y, &m, &d);
    int64_t secs = rem / 1000000;
    snprintf(out, 40, "%04lld-%02d-%02dT%02lld:%02lld:%02lld.%06lldZ", (long long)y, m, d,
             (long long)(secs / 3600), (long long)(secs / 60 % 60), (long long)(secs % 60),
             (long long)(rem % 1000000));
}

/* Recomputes the hash of row i of res. Returns 0 (out filled) or PE_EINVAL (metadata unreadable),
 * PE_ENOMEM. */
static int row_hash(const pe_db_result_t *res, size_t i, char out[PE_AUDIT_HASH_LEN])
{
    cJSON *meta = NULL;
    char why[64];
    const char *mt = pe_db_result_get(res, i, C_METADATA);
    if (pe_json_parse(mt, strlen(mt), &meta, why, sizeof why) != 0)
        return PE_EINVAL;
    pe_changeset_audit_record_t r = {
        .id = pe_db_result_get(res, i, C_ID),
        .changeset_id = pe_db_result_get(res, i, C_CHANGESET),
        .store_id = pe_db_result_get(res, i, C_STORE),
        .seq = strtoll(pe_db_result_get(res, i, C_SEQ), NULL, 10),
        .occurred_us = strtoll(pe_db_result_get(res, i, C_US), NULL, 10),
        .actor_type = pe_db_result_get(res, i, C_ACTOR_TYPE),
        .actor_id = pe_db_result_get(res, i, C_ACTOR_ID),
        .action = pe_db_result_get(res, i, C_ACTION),
        .previous_state = pe_db_result_isnull(res, i, C_PREV_STATE)
                              ? NULL
                              : pe_db_result_get(res, i, C_PREV_STATE),
        .new_state = pe_db_result_get(res, i, C_NEW_STATE),
        .reason = pe_db_result_get(res, i, C_REASON),
        .metadata = meta,
    };
    int rc = pe_changeset_audit_hash(&r, pe_db_result_get(res, i, C_PREV_HASH), out);
    cJSON_Delete(meta);
    return rc;
}

/* ---- verify -----------------------------------------------------------------------------------
 */

typedef struct {
    char store[64];
    char changeset[PE_CHANGESET_ID_LEN + 8];
    int64_t seq;
    char hash[PE_AUDIT_HASH_LEN];
    int64_t head_seq;
    char head[PE_AUDIT_HASH_LEN];
    bool open;
} chain_t;

static cJSON *broken(const char *store, const char *cs, int64_t seq, const char *event_id,
                     const char *reason)
{
    cJSON *b = cJSON_CreateObject();
    if (!b)
        return NULL;
    cJSON_AddStringToObject(b, "storeId", store);
    cJSON_AddStringToObject(b, "changesetId", cs);
    cJSON_AddNumberToObject(b, "seq", (double)seq);
    if (event_id)
        cJSON_AddStringToObject(b, "eventId", event_id);
    else
        cJSON_AddNullToObject(b, "eventId");
    cJSON_AddStringToObject(b, "reason", reason);
    return b;
}

/* The end of a chain must be the head the ChangeSet row recorded. */
static cJSON *close_chain(const chain_t *c)
{
    if (!c->open || !c->head[0])
        return NULL; /* ChangeSet row gone (store deleted): nothing to compare with */
    if (c->seq != c->head_seq || strcmp(c->hash, c->head) != 0)
        return broken(c->store, c->changeset, c->seq + 1, NULL,
                      "the chain ends before the ChangeSet's recorded head (events missing)");
    return NULL;
}

int pe_changeset_audit_verify(pe_db_pool_t *db, const char *store_id, cJSON **out)
{
    int rc = PE_EINTERNAL;
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    cJSON *first = NULL;
    chain_t c = {.open = false};
    char k_store[64] = "", k_cs[PE_CHANGESET_ID_LEN + 8] = "", k_seq[32] = "0";
    long long checked = 0;
    *out = NULL;
    rc = pe_db_acquire(db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        goto out;
    for (;;) {
        const char *params[] = {store_id, k_store[0] ? k_store : NULL, k_cs, k_seq};
        rc = pe_db_exec(conn,
                        "SELECT " ROW_COLUMNS ", c.audit_seq, c.audit_head"
                        " FROM audit_events a LEFT JOIN changesets c"
                        " ON c.store_id = a.store_id AND c.id = a.changeset_id"
                        " WHERE ($1::uuid IS NULL OR a.store_id = $1::uuid)"
                        " AND ($2::uuid IS NULL OR (a.store_id, a.changeset_id, a.seq)"
                        " > ($2::uuid, $3, $4::bigint))"
                        " ORDER BY a.store_id, a.changeset_id, a.seq LIMIT 1000",
                        4, params, &res);
        if (rc != 0)
            goto out;
        size_t n = pe_db_result_rows(res);
        for (size_t i = 0; i < n && !first; i++) {
            const char *st = pe_db_result_get(res, i, C_STORE);
            const char *cs = pe_db_result_get(res, i, C_CHANGESET);
            const char *id = pe_db_result_get(res, i, C_ID);
            int64_t seq = strtoll(pe_db_result_get(res, i, C_SEQ), NULL, 10);
            const char *prev = pe_db_result_get(res, i, C_PREV_HASH);
            bool same = c.open && strcmp(c.store, st) == 0 && strcmp(c.changeset, cs) == 0;
            if (!same) {
                if ((first = close_chain(&c)))
                    break;
                snprintf(c.store, sizeof c.store, "%s", st);
                snprintf(c.changeset, sizeof c.changeset, "%s", cs);
                c.seq = 0;
                c.hash[0] = '\0';
                c.open = true;
                c.head_seq = strtoll(pe_db_result_get(res, i, C_NCOLS), NULL, 10);
                snprintf(c.head, sizeof c.head, "%s", pe_db_result_get(res, i, C_NCOLS + 1));
            }
            checked++;
            char want[PE_AUDIT_HASH_LEN];
            if (seq != c.seq + 1)
                first = broken(st, cs, seq, id,
                               c.seq ? "a gap in seq (events missing before it)"
                                     : "the chain does not start at seq 1");
            else if (strcmp(prev, c.hash) != 0)
                first =
                    broken(st, cs, seq, id, "previousHash is not the hash of the event before it");
            else if (row_hash(res, i, want) != 0 ||
                     strcmp(want, pe_db_result_get(res, i, C_HASH)) != 0)
                first = broken(st, cs, seq, id,
                               "the stored hash does not match the event's content (altered)");
            c.seq = seq;
            snprintf(c.hash, sizeof c.hash, "%s", pe_db_result_get(res, i, C_HASH));
        }
        if (n > 0) {
            snprintf(k_store, sizeof k_store, "%s", pe_db_result_get(res, n - 1, C_STORE));
            snprintf(k_cs, sizeof k_cs, "%s", pe_db_result_get(res, n - 1, C_CHANGESET));
            snprintf(k_seq, sizeof k_seq, "%s", pe_db_result_get(res, n - 1, C_SEQ));
        }
        pe_db_result_free(res);
        res = NULL;
        if (first || n < 1000)
            break;
    }
    if (!first)
        first = close_chain(&c);
    rc = PE_ENOMEM;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        goto out;
    cJSON_AddBoolToObject(o, "ok", first == NULL);
    cJSON_AddNumberToObject(o, "checked", (double)checked);
    if (first)
        cJSON_AddItemToObject(o, "firstBroken", first);
    else
        cJSON_AddNullToObject(o, "firstBroken");
    first = NULL;
    *out = o;
    rc = 0;
out:
    cJSON_Delete(first);
    pe_db_result_free(res);
    pe_db_release(db, conn);
    return rc;
}

/* ---- timeline rows as AuditEvent objects -------------------------------------------------------
 */

cJSON *pe_changeset_audit_row_json(const pe_db_result_t *res, size_t i)
{
    char ts[40];
    cJSON *meta = NULL, *o = cJSON_CreateObject(), *actor = NULL;
    char why[64];
    const char *mt = pe_db_result_get(res, i, C_METADATA);
    if (!o || pe_json_parse(mt, strlen(mt), &meta, why, sizeof why) != 0)
        goto fail;
    format_us(strtoll(pe_db_result_get(res, i, C_US), NULL, 10), ts);
    bool ok = cJSON_AddStringToObject(o, "id", pe_db_result_get(res, i, C_ID)) &&
              cJSON_AddStringToObject(o, "changesetId", pe_db_result_get(res, i, C_CHANGESET)) &&
              cJSON_AddStringToObject(o, "storeId", pe_db_result_get(res, i, C_STORE)) &&
              cJSON_AddNumberToObject(o, "seq",
                                      (double)strtoll(pe_db_result_get(res, i, C_SEQ), NULL, 10)) &&
              cJSON_AddStringToObject(o, "timestamp", ts) &&
              (actor = cJSON_AddObjectToObject(o, "actor")) &&
              cJSON_AddStringToObject(actor, "type", pe_db_result_get(res, i, C_ACTOR_TYPE)) &&
              cJSON_AddStringToObject(actor, "id", pe_db_result_get(res, i, C_ACTOR_ID)) &&
              cJSON_AddStringToObject(o, "action", pe_db_result_get(res, i, C_ACTION)) &&
              (pe_db_result_isnull(res, i, C_PREV_STATE)
                   ? cJSON_AddNullToObject(o, "previousState") != NULL
                   : cJSON_AddStringToObject(o, "previousState",
                                             pe_db_result_get(res, i, C_PREV_STATE)) != NULL) &&
              cJSON_AddStringToObject(o, "newState", pe_db_result_get(res, i, C_NEW_STATE)) &&
              cJSON_AddStringToObject(o, "reason", pe_db_result_get(res, i, C_REASON));
    if (!ok || !cJSON_AddItemToObject(o, "metadata", meta))
        goto fail;
    meta = NULL;
    ok = cJSON_AddStringToObject(o, "hash", pe_db_result_get(res, i, C_HASH)) &&
         (pe_db_result_isnull(res, i, C_PREV_HASH)
              ? cJSON_AddNullToObject(o, "previousHash") != NULL
              : cJSON_AddStringToObject(o, "previousHash", pe_db_result_get(res, i, C_PREV_HASH)) !=
                    NULL);
    if (!ok)
        goto fail;
    return o;
fail:
    cJSON_Delete(meta);
    cJSON_Delete(o);
    return NULL;
}

int pe_changeset_audit_timeline_rows(pe_db_conn_t *conn, const char *store_id, const char *id,
                                     cJSON *arr)
{
    pe_db_result_t *res = NULL;
    const char *params[] = {store_id, id};
    int rc = pe_db_exec(conn,
                        "SELECT " ROW_COLUMNS " FROM audit_events a"
                        " WHERE a.store_id = $1::uuid AND a.changeset_id = $2 ORDER BY a.seq",
                        2, params, &res);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < pe_db_result_rows(res); i++) {
        cJSON *e = pe_changeset_audit_row_json(res, i);
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            rc = PE_ENOMEM;
            break;
        }
    }
    pe_db_result_free(res);
    return rc;
}

/* ---- export ------------------------------------------------------------------------------------
 */

struct pe_changeset_audit_export {
    pe_db_pool_t *db;
    char store_id[64];
    bool csv;
    int64_t from_us, to_us;
    char cursor_us[32];
    char cursor_id[PE_CHANGESET_ID_LEN + 8];
    bool started, done, header_sent;
    pe_buf_t pending;
    size_t pos;
};

pe_changeset_audit_export_t *pe_changeset_audit_export_new(pe_db_pool_t *db, const char *store_id,
                                                           bool csv, int64_t from_us, int64_t to_us)
{
    pe_changeset_audit_export_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->db = db;
    snprintf(x->store_id, sizeof x->store_id, "%s", store_id);
    x->csv = csv;
    x->from_us = from_us;
    x->to_us = to_us;
    return x;
}

void pe_changeset_audit_export_free(pe_changeset_audit_export_t *x)
{
    if (!x)
        return;
    pe_buf_free(&x->pending);
    free(x);
}

static const char CSV_HEADER[] = "id,changesetId,storeId,seq,timestamp,actorType,actorId,action,"
                                 "previousState,newState,reason,metadata,hash,previousHash\r\n";

static int format_row(pe_changeset_audit_export_t *x, const pe_db_result_t *res, size_t i)
{
    pe_buf_t *b = &x->pending;
    if (!x->csv) {
        cJSON *o = pe_changeset_audit_row_json(res, i);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!text)
            return PE_ENOMEM;
        int rc = pe_buf_puts(b, text);
        free(text);
        return rc ? rc : pe_buf_puts(b, "\n");
    }
    char ts[40];
    format_us(strtoll(pe_db_result_get(res, i, C_US), NULL, 10), ts);
    const char *cells[] = {pe_db_result_get(res, i, C_ID),
                           pe_db_result_get(res, i, C_CHANGESET),
                           pe_db_result_get(res, i, C_STORE),
                           pe_db_result_get(res, i, C_SEQ),
                           ts,
                           pe_db_result_get(res, i, C_ACTOR_TYPE),
                           pe_db_result_get(res, i, C_ACTOR_ID),
                           pe_db_result_get(res, i, C_ACTION),
                           pe_db_result_get(res, i, C_PREV_STATE),
                           pe_db_result_get(res, i, C_NEW_STATE),
                           pe_db_result_get(res, i, C_REASON),
                           pe_db_result_get(res, i, C_METADATA),
                           pe_db_result_get(res, i, C_HASH),
                           pe_db_result_get(res, i, C_PREV_HASH)};
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < PE_ARRAY_LEN(cells); k++) {
        rc = k ? pe_buf_puts(b, ",") : 0;
        rc = rc ? rc : pe_changeset_csv_cell(b, cells[k]);
    }
    return rc ? rc : pe_buf_puts(b, "\r\n");
}

/* Fetches the next page into x->pending. */
static int fetch_page(pe_changeset_audit_export_t *x)
{
    pe_db_conn_t *conn = NULL;
    pe_db_result_t *res = NULL;
    char from[32], to[32];
    snprintf(from, sizeof from, "%lld", (long long)x->from_us);
    snprintf(to, sizeof to, "%lld", (long long)x->to_us);
    /* PE_AUDIT_UNBOUNDED is NULL for SQL: 0 is a real bound (1970-01-01T00:00:00Z) */
    const char *params[] = {x->store_id, x->from_us == PE_AUDIT_UNBOUNDED ? NULL : from,
                            x->to_us == PE_AUDIT_UNBOUNDED ? NULL : to,
                            x->cursor_us[0] ? x->cursor_us : NULL, x->cursor_id};
    int rc = pe_db_acquire(x->db, ACQUIRE_TIMEOUT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = pe_db_exec(
        conn,
        "SELECT " ROW_COLUMNS " FROM audit_events a WHERE a.store_id = $1::uuid"
        " AND ($2::bigint IS NULL OR"
        "      a.occurred_at >= 'epoch'::timestamptz + $2::bigint * interval '1 microsecond')"
        " AND ($3::bigint IS NULL OR"
        "      a.occurred_at < 'epoch'::timestamptz + $3::bigint * interval '1 microsecond')"
        " AND ($4::bigint IS NULL OR (a.occurred_at, a.id) >"
        "      ('epoch'::timestamptz + $4::bigint * interval '1 microsecond', $5))"
        " ORDER BY a.occurred_at, a.id LIMIT 500",
        5, params, &res);
    pe_db_release(x->db, conn);
    if (rc != 0)
        return rc;
    size_t n = pe_db_result_rows(res);
    pe_buf_reset(&x->pending);
    x->pos = 0;
    if (x->csv && !x->header_sent) {
        rc = pe_buf_puts(&x->pending, CSV_HEADER);
        x->header_sent = true;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = format_row(x, res, i);
    if (rc == 0 && n > 0) {
        snprintf(x->cursor_us, sizeof x->cursor_us, "%s", pe_db_result_get(res, n - 1, C_US));
        snprintf(x->cursor_id, sizeof x->cursor_id, "%s", pe_db_result_get(res, n - 1, C_ID));
    }
    if (n < PAGE_ROWS)
        x->done = true;
    pe_db_result_free(res);
    return rc;
}

long pe_changeset_audit_export_read(pe_changeset_audit_export_t *x, char *buf, size_t max)
{
    while (x->pos >= x->pending.len) {
        if (x->done)
            return 0;
        int rc = fetch_page(x);
        if (rc != 0)
            return rc;
    }
    size_t n = x->pending.len - x->pos;
    if (n > max)
        n = max;
    memcpy(buf, x->pending.data + x->pos, n);
    x->pos += n;
    return (long)n;
}
