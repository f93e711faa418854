-- Chain reorganisations. The watcher remembers the hash of every block it ingested events
-- from and of the last block of every batch (the cursor's block). On each poll it compares
-- the highest of them with the node's block at that height: a different hash means the
-- chain replaced blocks the hub has ingested. It then finds the highest remembered block
-- the chain still holds, undoes the events above it (re-deriving the affected channels'
-- confirmed funding from the events that remain), records what it undid here, and ingests
-- the new blocks.
CREATE TABLE chain_blocks (
    number  BIGINT PRIMARY KEY CHECK (number >= 0),
    hash    BYTEA NOT NULL CHECK (length(hash) = 32)
);

-- One row per reorganisation the watcher undid: for the operator and for audits.
CREATE TABLE chain_reorgs (
    id              BIGSERIAL PRIMARY KEY,
    detected_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The highest remembered block the chain still holds; everything ingested above it was
    -- undone. NULL: none of the remembered blocks is on the chain any more (everything since
    -- the start block was undone).
    kept_block      BIGINT,
    -- The highest remembered block, which the chain replaced: its number and the hash the
    -- watcher had ingested.
    replaced_block  BIGINT NOT NULL,
    replaced_hash   BYTEA NOT NULL CHECK (length(replaced_hash) = 32),
    -- The undone events as they were stored in chain_events (a JSON array of rows).
    undone_events   JSONB NOT NULL,
    -- Basic channels that left `open` because a deposit counted for them disappeared.
    unfunded        BYTEA[] NOT NULL DEFAULT '{}',
    -- What happened to the hub's own outbox entries because of it: entries withdrawn before
    -- they sent anything more, and entries re-armed so the action can be taken again
    -- ([{"key", "status", "change"}]).
    outbox          JSONB NOT NULL DEFAULT '[]'
);
