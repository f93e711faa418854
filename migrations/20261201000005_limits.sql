-- Limits against abuse (see `[limits]` in deploy/ingrid.example.toml).
--
-- A proposal whose validUntil passed unaccepted is `expired` (a status of its own): it no
-- longer counts against its proposer's cap of open proposals, and can no longer be accepted.
ALTER TYPE virtual_status ADD VALUE IF NOT EXISTS 'expired';

-- Counting a proposer's open proposals, and finding the proposals to expire.
CREATE INDEX virtual_channels_proposals ON virtual_channels ((participants[1]), valid_until)
    WHERE status = 'proposed';

-- Counting and trimming a client's sessions (a login beyond the cap ends the oldest).
CREATE INDEX sessions_client ON sessions (client, expires_at);
