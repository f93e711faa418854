-- Collateral top-ups: the hub deposits more into a busy client's basic channel (its free
-- balance fell below the asset's `top_up_below`), then, once the deposit is confirmed on
-- chain, raises its balance by an off-chain update the client countersigns.
CREATE TABLE top_ups (
    channel_id   BYTEA NOT NULL REFERENCES basic_channels (id),
    asset        BYTEA NOT NULL CHECK (length(asset) = 20),
    -- The hub's address (the deposit's participant).
    participant  BYTEA NOT NULL CHECK (length(participant) = 20),
    amount       NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    -- The hub's holding on chain once deposited (its required funding after the top-up).
    target       NUMERIC(78, 0) NOT NULL,
    -- depositing: in the outbox; confirmed: on chain, offered to the client; applied: in the
    -- channel's state.
    status       TEXT NOT NULL DEFAULT 'depositing' CHECK (status IN ('depositing', 'confirmed', 'applied')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, asset, target)
);
-- At most one top-up under way per channel and asset.
CREATE UNIQUE INDEX top_ups_pending ON top_ups (channel_id, asset) WHERE status <> 'applied';
