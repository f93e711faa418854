-- Virtual channels brokered by the hub: proposed by participant 0 (its parent is
-- parent_proposer), accepted by participant 1 (parent_acceptor). Both parents' lock and
-- settlement updates live in channel_states like any other update.
CREATE TYPE virtual_status AS ENUM ('proposed', 'open', 'closing', 'closed', 'rejected');

CREATE TABLE virtual_channels (
    id                 BYTEA PRIMARY KEY CHECK (length(id) = 32),
    params             JSONB NOT NULL,
    proposer           BYTEA NOT NULL REFERENCES clients (address),
    acceptor           BYTEA NOT NULL REFERENCES clients (address),
    parent_proposer    BYTEA NOT NULL REFERENCES basic_channels (id),
    parent_acceptor    BYTEA REFERENCES basic_channels (id),
    -- The opening state and both signatures on it (the acceptor's once accepted).
    initial            JSONB NOT NULL,
    sig_proposer       BYTEA NOT NULL CHECK (length(sig_proposer) = 65),
    sig_acceptor       BYTEA CHECK (length(sig_acceptor) = 65),
    -- The proposer's parent update as proposed: {state, signature}.
    proposed_parent    JSONB NOT NULL,
    valid_until        BIGINT NOT NULL,
    status             virtual_status NOT NULL DEFAULT 'proposed',
    -- The final state signed by both, recorded by the first close.
    final_state        JSONB,
    final_sig0         BYTEA,
    final_sig1         BYTEA,
    settled_proposer   BOOLEAN NOT NULL DEFAULT false,
    settled_acceptor   BOOLEAN NOT NULL DEFAULT false,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX virtual_channels_proposer ON virtual_channels (proposer, created_at DESC);
CREATE INDEX virtual_channels_acceptor ON virtual_channels (acceptor, created_at DESC);
CREATE INDEX virtual_channels_open ON virtual_channels (status, valid_until);
