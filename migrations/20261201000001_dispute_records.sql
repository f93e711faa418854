-- Disputes are keyed by the adjudicator's record, not by channel id: a basic channel's record
-- is its channel id, a virtual channel's is subChannelKey(id, assets, totals), so a state of
-- a virtual channel with other totals (registered through some other ledger channel) lands
-- on a row of its own and never stands for the record its parents read.
--
-- Every number that comes from the chain is stored faithfully: versions and timeouts are
-- uint64 on chain, which BIGINT cannot hold (a version >= 2^63 made ingestion fail forever).
ALTER TABLE disputes DROP CONSTRAINT disputes_pkey;
ALTER TABLE disputes ADD COLUMN record_key BYTEA CHECK (length(record_key) = 32);
-- Basic channels: the record is the channel id. Virtual channels: filled in by the hub at its
-- next start (the key is a keccak256 of the channel's assets and totals).
UPDATE disputes SET record_key = channel_id WHERE kind = 'basic';
ALTER TABLE disputes
    ALTER COLUMN registered_version TYPE NUMERIC(20, 0),
    ALTER COLUMN hub_version TYPE NUMERIC(20, 0),
    ALTER COLUMN timeout TYPE NUMERIC(20, 0);
ALTER TABLE disputes
    DROP CONSTRAINT IF EXISTS disputes_registered_version_check,
    ADD CONSTRAINT disputes_u64 CHECK (
        registered_version BETWEEN 0 AND 18446744073709551615
        AND hub_version BETWEEN 0 AND 18446744073709551615
        AND timeout BETWEEN 0 AND 18446744073709551615);
-- Whether the record is the one the hub's parents read (a virtual channel's totals equal
-- what its parents lock); other records are kept for the operator only.
ALTER TABLE disputes ADD COLUMN ours BOOLEAN NOT NULL DEFAULT true;
CREATE UNIQUE INDEX disputes_record ON disputes (record_key);
CREATE INDEX disputes_channel ON disputes (channel_id);

-- An event the watcher could not apply (malformed, unexpected, out of range) is stored with
-- the reason and skipped: no single event may stop ingestion. NULL: applied.
ALTER TABLE chain_events ADD COLUMN skipped TEXT;
CREATE INDEX chain_events_skipped ON chain_events (block_number) WHERE skipped IS NOT NULL;
