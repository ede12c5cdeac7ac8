-- 0022_attribution.sql — what attribution (issue 20) keeps: a store's business settings that it
-- divides by (the subscription cost a month, for ROI; src/tenancy/settings.c, GET / PUT
-- /api/v1/stores/{id}/settings), and the attribution of recent ranges as computed by the
-- measure job or a GET (src/experiments/attribution.c), so the dashboard does not recompute
-- the holdout comparison over every exposed visitor at each page load.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. One store_settings row per store at most; no row or a NULL cost = not set (ROI is null,
--     never invented). Money in the store's currency, to the cent, 0 … 1e9.
--  2. A snapshot is a pure function of the store's rollups and experiment ends at computed_at
--     over [from_day, to_day] (store-local dates); ROI is not in it (read with the settings as
--     they are now). The measure job refreshes the default range and the ranges asked for in
--     the last day, and deletes older ones.
--  3. Keys lead with store_id; rows go with their store.

CREATE TABLE store_settings (
    store_id                    uuid          PRIMARY KEY REFERENCES stores (id) ON DELETE CASCADE,
    subscription_cost_per_month numeric(14,2) CHECK (subscription_cost_per_month >= 0
                                                     AND subscription_cost_per_month <= 1e9),
    updated_at                  timestamptz   NOT NULL
);

CREATE TABLE attribution_snapshots (
    store_id    uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    from_day    date        NOT NULL,
    to_day      date        NOT NULL,
    computed_at timestamptz NOT NULL,
    asked_at    timestamptz NOT NULL, -- the last GET that read it (what the job keeps warm)
    range_days  float8      NOT NULL, -- days from the range's start to its end or computed_at
    doc         jsonb       NOT NULL,
    PRIMARY KEY (store_id, from_day, to_day)
);
