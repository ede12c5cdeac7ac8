/*
 * lifecycle.c — the ChangeSet state machine: the one table of allowed transitions, who may
 * trigger each, and what each does besides moving the state. service.c runs a row of this
 * table inside one database transaction (pe_changeset_transition → run_transition).
 *
 *                         submit                approve (guarded)
 *   ┌───────┐  merchant/autopilot  ┌──────────────────┐  merchant   ┌────────┐
 *   │ DRAFT │─────────────────────▶│ PENDING_APPROVAL │────────────▶│ ACTIVE │
 *   └───┬───┘                      └────────┬─────────┘             └───┬────┘
 *       │ discard (merchant)      reject (merchant) │ expire (system)    │ measure
 *       ▼                                  ▼        ▼                   ▼ system/autopilot
 *   ┌──────────┐◀──────────────────────────────────────┐          ┌───────────┐
 *   │ ARCHIVED │                                        │          │ MEASURING │
 *   └──────────┘                                                   └─────┬─────┘
 *                        rollback (merchant/system/autopilot)            │ prove
 *   ACTIVE, MEASURING, PROVEN(merchant only) ──────────▶ ┌─────────────┐  ▼ system/autopilot
 *                                                        │ ROLLED_BACK │ ┌────────┐
 *                                                        └──────┬──────┘ │ PROVEN │
 *                         keep anyway (merchant, confirm:true)  │        └───┬────┘
 *                                                               ▼            │ adopt (guarded)
 *                                                         ┌───────────┐◀─────┘ merchant/autopilot
 *                                                         │ PERMANENT │
 *                                                         └───────────┘
 *
 * Invariants:
 *  1. TABLE is the only place that allows a transition; an edge absent from it is refused with
 *     the current state and the allowed next states named.
 *  2. Every edge names the audit action it appends and the function that carries it out.
 *  3. Leaving ACTIVE/MEASURING/PROVEN for ROLLED_BACK is never guarded: a rollback must never be
 *     blocked by the checks that protect going live.
 *  4. PERMANENT and ARCHIVED are terminal.
 */
#include <stdio.h>
#include <string.h>

#include "pe/changeset.h"

#define M PE_CS_BY_MERCHANT
#define S PE_CS_BY_SYSTEM
#define A PE_CS_BY_AUTOPILOT

/* from → to | who | effects | audit action | function (service.c) */
static const pe_changeset_transition_t TABLE[] = {
    {PE_CS_DRAFT, PE_CS_PENDING_APPROVAL, M | A, PE_CS_T_SUBMIT, "submitted", "run_transition"},
    {PE_CS_DRAFT, PE_CS_ARCHIVED, M, 0, "archived", "run_transition"},
    {PE_CS_PENDING_APPROVAL, PE_CS_ACTIVE, M,
     PE_CS_T_GUARDED | PE_CS_T_APPROVE | PE_CS_T_STAMP_START | PE_CS_T_FLAG_ENABLE, "approved",
     "run_transition"},
    {PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, M, PE_CS_T_REJECT, "rejected", "run_transition"},
    {PE_CS_PENDING_APPROVAL, PE_CS_ARCHIVED, S, PE_CS_T_EXPIRE, "expired",
     "pe_changeset_expire_due"},
    {PE_CS_ACTIVE, PE_CS_MEASURING, S | A, 0, "measured", "run_transition"},
    {PE_CS_ACTIVE, PE_CS_ROLLED_BACK, M | S | A, PE_CS_T_STAMP_END | PE_CS_T_FLAG_DISABLE,
     "rolled_back", "run_transition"},
    {PE_CS_MEASURING, PE_CS_PROVEN, S | A, PE_CS_T_NEEDS_PROOF | PE_CS_T_STAMP_END, "proven",
     "run_transition"},
    {PE_CS_MEASURING, PE_CS_ROLLED_BACK, M | S | A, PE_CS_T_STAMP_END | PE_CS_T_FLAG_DISABLE,
     "rolled_back", "run_transition"},
    {PE_CS_PROVEN, PE_CS_PERMANENT, M | A, PE_CS_T_GUARDED | PE_CS_T_FLAG_WINNER, "made_permanent",
     "run_transition"},
    {PE_CS_PROVEN, PE_CS_ROLLED_BACK, M, PE_CS_T_FLAG_DISABLE, "rolled_back", "run_transition"},
    {PE_CS_ROLLED_BACK, PE_CS_PERMANENT, M, PE_CS_T_CONFIRM | PE_CS_T_GUARDED | PE_CS_T_FLAG_WINNER,
     "made_permanent", "run_transition"},
};

static const char *const NAMES[PE_CS_NSTATES] = {"DRAFT",     "PENDING_APPROVAL", "ACTIVE",
                                                 "MEASURING", "PROVEN",           "ROLLED_BACK",
                                                 "PERMANENT", "ARCHIVED"};

const char *pe_changeset_state_name(pe_changeset_state_t s)
{
    return (unsigned)s < PE_CS_NSTATES ? NAMES[s] : NULL;
}

int pe_changeset_state_parse(const char *name, pe_changeset_state_t *out)
{
    for (unsigned i = 0; name && i < PE_CS_NSTATES; i++)
        if (strcmp(NAMES[i], name) == 0) {
            *out = (pe_changeset_state_t)i;
            return 0;
        }
    return PE_EINVAL;
}

const pe_changeset_transition_t *
pe_changeset_transition_find(pe_changeset_state_t from, pe_changeset_state_t to, unsigned actor)
{
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLE); i++)
        if (TABLE[i].from == from && TABLE[i].to == to && (!actor || (TABLE[i].actors & actor)))
            return &TABLE[i];
    return NULL;
}

void pe_changeset_next_states(pe_changeset_state_t from, unsigned actor, char *out, size_t outlen)
{
    size_t n = 0;
    bool seen[PE_CS_NSTATES] = {false};
    out[0] = '\0';
    for (size_t i = 0; i < PE_ARRAY_LEN(TABLE) && n < outlen; i++) {
        const pe_changeset_transition_t *t = &TABLE[i];
        if (t->from != from || (actor && !(t->actors & actor)) || seen[t->to])
            continue;
        seen[t->to] = true;
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? ", " : "", NAMES[t->to]);
    }
    if (!out[0])
        snprintf(out, outlen, "none");
}

const pe_changeset_transition_t *pe_changeset_transitions(size_t *count)
{
    *count = PE_ARRAY_LEN(TABLE);
    return TABLE;
}
