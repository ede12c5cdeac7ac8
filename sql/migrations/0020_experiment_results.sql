-- 0020_experiment_results.sql — one row per finished Autopilot experiment: how it ended (PROVEN
-- or ROLLED_BACK, and a rollback's kind), its primary metric and profit per visitor with their
-- effects, and the impact a month, for history and for attribution (issue 20) to add up
-- without re-measuring anything. Written by src/experiments/measure.c.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Keys lead with store_id; every read filters by it.
--  2. An automatic end (the measure job: a rollback trigger, the profit guardrail, a losing or
--     inconclusive final look, a proof) is written IN THE TRANSACTION of its lifecycle
--     transition (pe_changeset_transition_req_t.in_transaction): the row exists exactly when
--     the ChangeSet reached that state that way. A merchant's rollback (the API) is recorded by
--     the next measure run, measured over the experiment's span [started_at, ended_at), with
--     rollback_kind 'manual'.
--  3. One row per ChangeSet: its first end. A PROVEN change later rolled back by the merchant
--     keeps its PROVEN row (the changeset's status says what is live now).
--  4. Effects are relative to the control mean (decide.c's convention), NULL where undefined;
--     impacts are in the store's currency a month at the traffic the experiment saw.
--  5. Rows go with their ChangeSet (ON DELETE CASCADE).

CREATE TABLE experiment_results (
    store_id           uuid        NOT NULL,
    changeset_id       text        NOT NULL,
    flag_key           text        NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('PROVEN', 'ROLLED_BACK')),
    rollback_kind      text        CHECK (rollback_kind IN ('automatic', 'manual')),
    decision_action    text,       -- pe_experiments_action_name of the decision; NULL when manual
    decided_at         timestamptz NOT NULL,
    started_at         timestamptz,
    ended_at           timestamptz,
    primary_metric     text        NOT NULL,
    control_units      bigint      NOT NULL,
    treatment_units    bigint      NOT NULL,
    primary_effect     float8,
    primary_ci_low     float8,
    primary_ci_high    float8,
    primary_p          float8,
    profit_effect      float8,
    profit_ci_low      float8,
    profit_ci_high     float8,
    profit_p           float8,
    revenue_per_month  float8,
    profit_per_month   float8,
    profit_per_month_low float8,
    decision           jsonb       NOT NULL,
    PRIMARY KEY (store_id, changeset_id),
    FOREIGN KEY (store_id, changeset_id) REFERENCES changesets (store_id, id) ON DELETE CASCADE,
    CHECK ((outcome = 'ROLLED_BACK') = (rollback_kind IS NOT NULL))
);
CREATE INDEX experiment_results_decided_idx ON experiment_results (store_id, decided_at);
