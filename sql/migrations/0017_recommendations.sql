-- 0017_recommendations.sql — recommendations: playbooks applied to the funnel doctor's findings,
-- each carried by an Autopilot ChangeSet (src/doctor/recommendations.c writes and reads them;
-- the playbooks and the impact are src/doctor/playbooks.c and recommend.c).
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Keys lead with store_id; every read filters by it.
--  2. A finding is known across runs by finding_key (kind:step:segment), not by its id, which
--     changes with every run; finding_id is the latest run's.
--  3. At most one open recommendation (active, queued or blocked) per store × playbook × finding
--     (the partial unique index), so a generation that runs twice proposes nothing twice.
--  4. doc is the recommendation as built (recommend.c) without the columns' fields (id, status,
--     rank, changesetId, violations, times, reason): the API merges them.
--  5. recommendation_state remembers the diagnostic run each store's recommendations were last
--     generated from, so the daily job generates once per run.

CREATE TABLE recommendations (
    store_id     uuid             NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    id           uuid             NOT NULL,
    playbook     text             NOT NULL,
    finding_key  text             NOT NULL,
    finding_id   uuid             NOT NULL,
    status       text             NOT NULL CHECK (status IN ('active', 'queued', 'blocked',
                                                             'approved', 'rejected', 'retired')),
    priority     double precision NOT NULL,
    changeset_id text             NOT NULL,
    violations   jsonb            NOT NULL DEFAULT '[]',
    reason       text             NULL,
    created_at   timestamptz      NOT NULL,
    updated_at   timestamptz      NOT NULL,
    decided_at   timestamptz      NULL,
    doc          jsonb            NOT NULL,
    PRIMARY KEY (store_id, id)
);
CREATE UNIQUE INDEX recommendations_open_idx ON recommendations (store_id, playbook, finding_key)
    WHERE status IN ('active', 'queued', 'blocked');
CREATE INDEX recommendations_status_idx ON recommendations (store_id, status, priority DESC);

CREATE TABLE recommendation_state (
    store_id     uuid        NOT NULL PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    run_id       uuid        NOT NULL,
    generated_at timestamptz NOT NULL
);
