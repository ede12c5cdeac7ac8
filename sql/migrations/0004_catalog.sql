-- 0004_catalog.sql — a store's product catalogue: what it sells, at what price and cost, and
-- how much is in stock. Owned by src/catalog/; the simulator writes its catalogue through it and
-- the guardrails (margin, stock) read it.
--
-- Runs inside the migration runner's transaction. Append-only: a change is a new file.
--
-- Invariants:
--  1. Every row carries store_id and the key leads with it (Citus distributes by it unchanged);
--     every statement of src/catalog/ filters by store_id.
--  2. A SKU names one product per store: (store_id, sku) is the key, and an upsert of a known
--     SKU replaces the product's fields and moves updated_at.
--  3. The C validator (src/catalog/validate.c) checks everything first with a message naming the
--     field; the checks here are the last line of defence and agree with it: sku 1..128 bytes,
--     name and category 1..256 bytes, none with control characters; price and cost 0..1e9;
--     stock 0..1e9; currency three upper-case letters.
--  4. sku sorts bytewise (COLLATE "C"): the list is paginated by sku, and the order must not
--     depend on the database's locale.

CREATE TABLE products (
    store_id    uuid        NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    sku         text        COLLATE "C" NOT NULL
                CHECK (octet_length(sku) BETWEEN 1 AND 128 AND sku !~ '[[:cntrl:]]'),
    name        text        NOT NULL
                CHECK (octet_length(name) BETWEEN 1 AND 256 AND name !~ '[[:cntrl:]]'),
    category    text        NOT NULL
                CHECK (octet_length(category) BETWEEN 1 AND 256 AND category !~ '[[:cntrl:]]'),
    price       numeric     NOT NULL CHECK (price >= 0 AND price <= 1e9),
    -- NULL: the merchant has not told us the cost (margin guardrails then cannot vouch).
    cost        numeric     NULL CHECK (cost >= 0 AND cost <= 1e9),
    -- NULL: stock is not tracked for this product.
    stock       integer     NULL CHECK (stock >= 0 AND stock <= 1000000000),
    currency    char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, sku)
);

-- The list filtered by category, paginated by sku.
CREATE INDEX products_category_idx ON products (store_id, category, sku);
