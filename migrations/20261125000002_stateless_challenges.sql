-- Login challenges are MACed by the hub instead of stored, so asking for one writes
-- nothing; a nonce is recorded only once its challenge was signed by the client (single use).
DROP TABLE auth_challenges;

CREATE TABLE used_challenges (
    nonce       BYTEA PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
