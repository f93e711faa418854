-- Ingrid's books: clients, basic channels, every signed state, on-chain funding, ingested
-- chain events, the outbox of the hub's transactions, idempotency keys and sessions.
-- Addresses are 20-byte BYTEA, hashes 32-byte BYTEA, amounts NUMERIC(78, 0) (uint256).

CREATE TABLE clients (
    address     BYTEA PRIMARY KEY CHECK (length(address) = 20),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TYPE channel_status AS ENUM ('funding', 'open', 'closing', 'closed');

CREATE TABLE basic_channels (
    id              BYTEA PRIMARY KEY CHECK (length(id) = 32),
    client          BYTEA NOT NULL REFERENCES clients (address),
    hub_index       SMALLINT NOT NULL CHECK (hub_index IN (0, 1)),
    params          JSONB NOT NULL,
    status          channel_status NOT NULL DEFAULT 'funding',
    -- Latest version signed by both parties; its row in channel_states always exists.
    latest_version  BIGINT NOT NULL CHECK (latest_version >= 0),
    -- Final balances per asset pushed on chain ([[p0, p1], ...] as decimal strings).
    settled         JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX basic_channels_client ON basic_channels (client, created_at DESC);
CREATE INDEX basic_channels_status ON basic_channels (status);

-- Every state either side signed, append-only: the latest fully signed one is always here.
CREATE TABLE channel_states (
    channel_id  BYTEA NOT NULL REFERENCES basic_channels (id),
    version     BIGINT NOT NULL CHECK (version >= 0),
    state       JSONB NOT NULL,
    digest      BYTEA NOT NULL CHECK (length(digest) = 32),
    sig0        BYTEA NOT NULL CHECK (length(sig0) = 65),
    sig1        BYTEA NOT NULL CHECK (length(sig1) = 65),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, version)
);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER channel_states_append_only BEFORE UPDATE OR DELETE ON channel_states
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- What each basic channel needs deposited per asset and participant, and what the chain
-- shows (confirmed) so far.
CREATE TABLE channel_funding (
    channel_id   BYTEA NOT NULL REFERENCES basic_channels (id),
    asset        BYTEA NOT NULL CHECK (length(asset) = 20),
    participant  BYTEA NOT NULL CHECK (length(participant) = 20),
    required     NUMERIC(78, 0) NOT NULL CHECK (required >= 0),
    deposited    NUMERIC(78, 0) NOT NULL DEFAULT 0 CHECK (deposited >= 0),
    PRIMARY KEY (channel_id, asset, participant)
);

-- Chain events ingested at the confirmation depth (idempotent on replay).
CREATE TABLE chain_events (
    block_number  BIGINT NOT NULL,
    log_index     BIGINT NOT NULL,
    block_hash    BYTEA NOT NULL,
    tx_hash       BYTEA NOT NULL,
    contract      BYTEA NOT NULL,
    name          TEXT NOT NULL,
    channel_id    BYTEA,
    payload       JSONB NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX chain_events_channel ON chain_events (channel_id);

-- Durable cursors: the last block fully ingested per reader.
CREATE TABLE chain_cursor (
    name   TEXT PRIMARY KEY,
    block  BIGINT NOT NULL
);

-- The hub's own chain transactions, sent and retried by the outbox worker.
CREATE TYPE outbox_status AS ENUM ('pending', 'done', 'failed');
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    -- One row per action: a retried enqueue is a no-op.
    dedup_key    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    channel_id   BYTEA,
    payload      JSONB NOT NULL,
    status       outbox_status NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    tx_hash      BYTEA,
    not_before   TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending ON outbox (not_before) WHERE status = 'pending';

-- Answers to state-changing requests, replayed for a retry with the same key.
CREATE TABLE idempotency_keys (
    client        BYTEA NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        SMALLINT NOT NULL,
    body          JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (client, key)
);

-- Login challenges (single use) and bearer sessions (token stored as its keccak256).
CREATE TABLE auth_challenges (
    nonce       BYTEA PRIMARY KEY,
    address     BYTEA NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE sessions (
    token_hash  BYTEA PRIMARY KEY,
    client      BYTEA NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
