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

-- The outbox serves answers to disputes first (Action::priority: lower first), and knows how
-- long the transaction of an entry has waited unmined, to replace it with a higher fee.
ALTER TABLE outbox ADD COLUMN priority SMALLINT NOT NULL DEFAULT 4;
UPDATE outbox SET priority = CASE kind WHEN 'refute' THEN 0 WHEN 'refute_virtual' THEN 0 WHEN 'register' THEN 1
                                       WHEN 'conclude' THEN 2 WHEN 'conclude_final' THEN 2 WHEN 'withdraw' THEN 3
                                       ELSE 4 END;
ALTER TABLE outbox ADD COLUMN tx_sent_at TIMESTAMPTZ;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (priority, id) WHERE status = 'pending';
