-- Disputes on chain: every registration of a channel the hub is party to (one of its basic
-- channels, or a virtual channel it brokered), what the chain shows of it, and how it ended.
-- Written by the watcher from the adjudicator's events; read by the outbox, the API (no
-- off-chain settlement against a registered virtual channel) and the metrics.
CREATE TABLE disputes (
    channel_id          BYTEA PRIMARY KEY CHECK (length(channel_id) = 32),
    kind                TEXT NOT NULL CHECK (kind IN ('basic', 'virtual')),
    -- The latest registered version and the digest (hashState) of that state.
    registered_version  BIGINT NOT NULL CHECK (registered_version >= 0),
    registered_digest   BYTEA NOT NULL CHECK (length(registered_digest) = 32),
    registered_final    BOOLEAN NOT NULL,
    -- Unix time from which the record can no longer be refuted.
    timeout             BIGINT NOT NULL,
    -- The newest version the hub held when it saw the registration.
    hub_version         BIGINT NOT NULL,
    -- open: registered; refuted: a stale registration the hub answered with a newer state
    -- (still to be concluded); concluded: the outcome was pushed (a virtual channel: a parent
    -- concluded with it).
    result              TEXT NOT NULL DEFAULT 'open' CHECK (result IN ('open', 'refuted', 'concluded')),
    first_block         BIGINT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX disputes_result ON disputes (kind, result);
