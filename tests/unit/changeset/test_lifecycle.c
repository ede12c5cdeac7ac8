/*
 * test_lifecycle.c — the transition table over every pair of states and every actor, the audit
 * hash chain's canonical form, and CSV cells.
 *
 * Invariants the tests hold the code to:
 *  1. Exactly the edges of the lifecycle are allowed (listed here independently of the table),
 *     each for exactly its actors; every other pair of states is refused.
 *  2. Terminal states (PERMANENT, ARCHIVED) have no next state; ROLLED_BACK leads only to
 *     PERMANENT, and only with confirmation, only for the merchant.
 *  3. The hash does not depend on the order of metadata keys, and changes with any field or
 *     with the previous hash; fields cannot be shifted into each other.
 *  4. CSV cells are RFC 4180 and formula-neutralised.
 */
#include <stdio.h>
#include <string.h>

#include "pe/changeset.h"
#include "pe_test.h"

enum { M = PE_CS_BY_MERCHANT, S = PE_CS_BY_SYSTEM, A = PE_CS_BY_AUTOPILOT };

typedef struct {
    pe_changeset_state_t from, to;
    unsigned actors;
} edge_t;

static const edge_t EXPECTED[] = {
    {PE_CS_DRAFT, PE_CS_PENDING_APPROVAL, M | A},
    {PE_CS_DRAFT, PE_CS_ARCHIVED, M | A},
    {PE_CS_PENDING_APPROVAL, PE_CS_ACTIVE, M},
    {PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, M | S | A},
    {PE_CS_ACTIVE, PE_CS_MEASURING, S | A},
    {PE_CS_ACTIVE, PE_CS_ROLLED_BACK, M | S | A},
    {PE_CS_MEASURING, PE_CS_PROVEN, S | A},
    {PE_CS_MEASURING, PE_CS_ROLLED_BACK, M | S | A},
    {PE_CS_PROVEN, PE_CS_PERMANENT, M | A},
    {PE_CS_PROVEN, PE_CS_ROLLED_BACK, M},
    {PE_CS_ROLLED_BACK, PE_CS_PERMANENT, M},
};

static unsigned expected_actors(pe_changeset_state_t from, pe_changeset_state_t to)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(EXPECTED); i++)
        if (EXPECTED[i].from == from && EXPECTED[i].to == to)
            return EXPECTED[i].actors;
    return 0;
}

static void test_every_pair(void **state)
{
    (void)state;
    static const unsigned actors[] = {M, S, A};
    int allowed = 0;
    for (int f = 0; f < PE_CS_NSTATES; f++)
        for (int t = 0; t < PE_CS_NSTATES; t++) {
            unsigned want = expected_actors(f, t);
            const pe_changeset_transition_t *any = pe_changeset_transition_find(f, t, 0);
            if ((any != NULL) != (want != 0))
                fail_msg("%s -> %s: %s", pe_changeset_state_name(f), pe_changeset_state_name(t),
                         any ? "allowed, expected refused" : "refused, expected allowed");
            for (size_t k = 0; k < 3; k++) {
                bool ok = pe_changeset_transition_find(f, t, actors[k]) != NULL;
                if (ok != ((want & actors[k]) != 0))
                    fail_msg("%s -> %s by actor %u: %s", pe_changeset_state_name(f),
                             pe_changeset_state_name(t), actors[k], ok ? "allowed" : "refused");
                allowed += ok;
            }
        }
    assert_int_equal(allowed, 22);
}

static void test_effects(void **state)
{
    (void)state;
    const pe_changeset_transition_t *t =
        pe_changeset_transition_find(PE_CS_ROLLED_BACK, PE_CS_PERMANENT, M);
    assert_non_null(t);
    assert_true(t->effects & PE_CS_T_CONFIRM);
    assert_true(t->effects & PE_CS_T_FLAG_WINNER);
    t = pe_changeset_transition_find(PE_CS_PENDING_APPROVAL, PE_CS_ACTIVE, M);
    assert_true((t->effects &
                 (PE_CS_T_GUARDED | PE_CS_T_APPROVE | PE_CS_T_FLAG_ENABLE | PE_CS_T_STAMP_START)) ==
                (PE_CS_T_GUARDED | PE_CS_T_APPROVE | PE_CS_T_FLAG_ENABLE | PE_CS_T_STAMP_START));
    assert_string_equal(t->action, "approved");
    assert_string_equal(
        pe_changeset_transition_find(PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, S)->action, "expired");
    assert_string_equal(
        pe_changeset_transition_find(PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, M)->action,
        "rejected");
    /* the autopilot withdraws a proposal whose finding is gone: never "rejected" */
    assert_string_equal(
        pe_changeset_transition_find(PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, A)->action,
        "withdrawn");
    /* a rollback is never guarded */
    size_t n;
    const pe_changeset_transition_t *all = pe_changeset_transitions(&n);
    for (size_t i = 0; i < n; i++)
        if (all[i].to == PE_CS_ROLLED_BACK)
            assert_false(all[i].effects & PE_CS_T_GUARDED);
    char next[160];
    pe_changeset_next_states(PE_CS_ACTIVE, 0, next, sizeof next);
    assert_string_equal(next, "MEASURING, ROLLED_BACK");
    pe_changeset_next_states(PE_CS_PERMANENT, 0, next, sizeof next);
    assert_string_equal(next, "none");
    pe_changeset_next_states(PE_CS_ROLLED_BACK, 0, next, sizeof next);
    assert_string_equal(next, "PERMANENT");
    pe_changeset_state_t s;
    assert_int_equal(pe_changeset_state_parse("MEASURING", &s), 0);
    assert_int_equal(s, PE_CS_MEASURING);
    assert_int_equal(pe_changeset_state_parse("measuring", &s), PE_EINVAL);
}

static void hash_of(const char *meta_json, const char *reason, const char *prev,
                    char out[PE_AUDIT_HASH_LEN])
{
    cJSON *meta = cJSON_Parse(meta_json);
    assert_non_null(meta);
    pe_changeset_audit_record_t r = {.id = "cm7a1k2p30001qz8xa1b2c3d4",
                                     .changeset_id = "cm7a1k2p30000qz8x4t9b2c1d",
                                     .store_id = "5b0f6a2e-8c1d-4e7a-9f3b-2d6c8e1a4b70",
                                     .seq = 2,
                                     .occurred_us = 1772357400000123,
                                     .actor_type = "user",
                                     .actor_id = "u1",
                                     .action = "approved",
                                     .previous_state = "PENDING_APPROVAL",
                                     .new_state = "ACTIVE",
                                     .reason = reason,
                                     .metadata = meta};
    assert_int_equal(pe_changeset_audit_hash(&r, prev, out), 0);
    cJSON_Delete(meta);
}

static void test_hash_canonical(void **state)
{
    (void)state;
    char a[PE_AUDIT_HASH_LEN], b[PE_AUDIT_HASH_LEN], c[PE_AUDIT_HASH_LEN], d[PE_AUDIT_HASH_LEN];
    hash_of("{\"b\":1,\"a\":{\"y\":[1,2.5,\"x\"],\"x\":true}}", "ok", "", a);
    hash_of("{\"a\":{\"x\":true,\"y\":[1,2.5,\"x\"]},\"b\":1.0}", "ok", "", b);
    assert_string_equal(a, b); /* key order and 1 vs 1.0 do not matter */
    hash_of("{\"b\":1,\"a\":{\"y\":[1,2.5,\"x\"],\"x\":false}}", "ok", "", c);
    assert_string_not_equal(a, c);
    hash_of("{\"b\":1,\"a\":{\"y\":[1,2.5,\"x\"],\"x\":true}}", "ok", a, d);
    assert_string_not_equal(a, d); /* chained to the previous hash */
    hash_of("{\"b\":1,\"a\":{\"y\":[1,2.5,\"x\"],\"x\":true}}", "ok ", "", c);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 64);
    /* the canonical text is length-prefixed and versioned */
    pe_buf_t t = PE_BUF_INIT;
    pe_changeset_audit_record_t r = {.id = "i",
                                     .changeset_id = "c",
                                     .store_id = "s",
                                     .seq = 1,
                                     .occurred_us = 5,
                                     .actor_type = "system",
                                     .actor_id = "x",
                                     .action = "created",
                                     .previous_state = NULL,
                                     .new_state = "DRAFT",
                                     .reason = "",
                                     .metadata = NULL};
    assert_int_equal(pe_changeset_audit_canonical(&r, &t), 0);
    assert_string_equal(t.data, "pe-audit-v1\n1:i\n1:c\n1:s\n1:1\n1:5\n6:system\n1:x\n7:created\n"
                                "-1:\n5:DRAFT\n0:\n2:{}\n");
    pe_buf_free(&t);
}

static void cell(const char *in, const char *want)
{
    pe_buf_t b = PE_BUF_INIT;
    assert_int_equal(pe_changeset_csv_cell(&b, in), 0);
    assert_string_equal(b.data ? b.data : "", want);
    pe_buf_free(&b);
}

static void test_csv(void **state)
{
    (void)state;
    cell("plain", "plain");
    cell("", "");
    cell("a,b", "\"a,b\"");
    cell("say \"hi\"", "\"say \"\"hi\"\"\"");
    cell("line\r\nbreak", "\"line\r\nbreak\"");
    cell("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\"");
    cell("+1", "\"'+1\"");
    cell("-2", "\"'-2\"");
    cell("@SUM(A1)", "\"'@SUM(A1)\"");
    cell("\tx", "\"'\tx\"");
    cell("a=b", "a=b");
    /* spreadsheets skip leading spaces; | opens DDE; full-width signs fold to ASCII */
    cell(" =1+1", "\"' =1+1\"");
    cell("  @x", "\"'  @x\"");
    cell("\n-3", "\"'\n-3\"");
    cell("|cmd", "\"'|cmd\"");
    cell("\xEF\xBC\x9D"
         "1+1",
         "\"'\xEF\xBC\x9D"
         "1+1\""); /* ＝ */
    cell("\xEF\xBC\x8B"
         "1",
         "\"'\xEF\xBC\x8B"
         "1\""); /* ＋ */
    cell("\xEF\xBC\x8D"
         "1",
         "\"'\xEF\xBC\x8D"
         "1\"");                                             /* － */
    cell("\xEF\xBC\xA0SUM(A1)", "\"'\xEF\xBC\xA0SUM(A1)\""); /* ＠ */
    cell("  plain", "  plain");
    cell("a|b", "a|b");
}

int main(void)
{
    pe_crypto_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair),
        cmocka_unit_test(test_effects),
        cmocka_unit_test(test_hash_canonical),
        cmocka_unit_test(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
