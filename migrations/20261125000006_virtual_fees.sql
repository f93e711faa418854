-- The fee per asset (JSON array of uint256 hex strings, in the virtual channel's asset order)
-- that the proposer pays the hub inside its parent's opening update; earned once accepted.
ALTER TABLE virtual_channels ADD COLUMN fees JSONB NOT NULL DEFAULT '[]';
