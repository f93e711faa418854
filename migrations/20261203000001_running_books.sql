-- Running books: what the policy and the metrics read is kept up to date in the transaction
-- that changes it, instead of being summed over every channel on each request or scrape.
--
-- Each basic channel row carries what its latest state holds of the hub's coins, per asset
-- (computed by the hub when it stores the state; `books_version` names that state). A
-- trigger adds the change of a row's contribution to the totals: the hub's locked and all
-- locked coins count while the channel is open or closing, its free coins while open.
-- Totals and counts live in one row per database session (`shard` = the backend's pid), so
-- concurrent transactions never wait for each other on a total; the janitor folds the rows
-- of ended sessions into shard 0. A total is the sum over its shards.

ALTER TABLE basic_channels
    ADD COLUMN assets        BYTEA[],
    ADD COLUMN hub_free      NUMERIC(78, 0)[],
    ADD COLUMN hub_locked    NUMERIC(78, 0)[],
    ADD COLUMN locked_total  NUMERIC(78, 0)[],
    ADD COLUMN books_version BIGINT,
    -- A writer that moves the latest version without the books (an older hub) fails loudly.
    ADD CONSTRAINT basic_channels_books_current CHECK (assets IS NULL OR books_version = latest_version);

-- The hub's coins per asset, in shards: locked in virtual channels (its own share), locked
-- in total (both sides), free in open channels.
CREATE TABLE hub_books (
    asset         BYTEA NOT NULL CHECK (length(asset) = 20),
    shard         INTEGER NOT NULL,
    hub_locked    NUMERIC(78, 0) NOT NULL DEFAULT 0,
    locked_total  NUMERIC(78, 0) NOT NULL DEFAULT 0,
    hub_free      NUMERIC(78, 0) NOT NULL DEFAULT 0,
    PRIMARY KEY (asset, shard)
);

-- Channels counted by kind ('basic', 'virtual') and status, in shards.
CREATE TABLE status_counts (
    kind    TEXT NOT NULL,
    status  TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    n       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, status, shard)
);

-- Fees earned per asset (those of every accepted virtual channel), in shards.
CREATE TABLE fees_earned (
    asset   BYTEA NOT NULL CHECK (length(asset) = 20),
    shard   INTEGER NOT NULL,
    amount  NUMERIC(78, 0) NOT NULL DEFAULT 0,
    PRIMARY KEY (asset, shard)
);

CREATE FUNCTION basic_channels_books() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_live BOOLEAN := TG_OP <> 'INSERT' AND OLD.status IN ('open', 'closing');
    was_open BOOLEAN := TG_OP <> 'INSERT' AND OLD.status = 'open';
    is_live  BOOLEAN := TG_OP <> 'DELETE' AND NEW.status IN ('open', 'closing');
    is_open  BOOLEAN := TG_OP <> 'DELETE' AND NEW.status = 'open';
    assets   BYTEA[] := CASE WHEN TG_OP = 'DELETE' THEN OLD.assets ELSE coalesce(NEW.assets, OLD.assets) END;
    d_locked NUMERIC;
    d_total  NUMERIC;
    d_free   NUMERIC;
BEGIN
    -- (Statements written out here, not called as functions: PL/pgSQL keeps their plans.)
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_counts AS c (kind, status, shard, n) VALUES ('basic', NEW.status::text, pg_backend_pid(), 1)
        ON CONFLICT (kind, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO status_counts AS c (kind, status, shard, n) VALUES ('basic', OLD.status::text, pg_backend_pid(), -1)
        ON CONFLICT (kind, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    ELSIF OLD.status <> NEW.status THEN
        INSERT INTO status_counts AS c (kind, status, shard, n)
        VALUES ('basic', OLD.status::text, pg_backend_pid(), -1), ('basic', NEW.status::text, pg_backend_pid(), 1)
        ON CONFLICT (kind, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    FOR i IN 1 .. coalesce(array_length(assets, 1), 0) LOOP
        d_locked := 0; d_total := 0; d_free := 0;
        IF is_live THEN
            d_locked := d_locked + coalesce(NEW.hub_locked[i], 0);
            d_total := d_total + coalesce(NEW.locked_total[i], 0);
        END IF;
        IF is_open THEN d_free := d_free + coalesce(NEW.hub_free[i], 0); END IF;
        IF was_live THEN
            d_locked := d_locked - coalesce(OLD.hub_locked[i], 0);
            d_total := d_total - coalesce(OLD.locked_total[i], 0);
        END IF;
        IF was_open THEN d_free := d_free - coalesce(OLD.hub_free[i], 0); END IF;
        IF d_locked <> 0 OR d_total <> 0 OR d_free <> 0 THEN
            INSERT INTO hub_books (asset, shard, hub_locked, locked_total, hub_free)
            VALUES (assets[i], pg_backend_pid(), d_locked, d_total, d_free)
            ON CONFLICT (asset, shard) DO UPDATE SET
                hub_locked = hub_books.hub_locked + EXCLUDED.hub_locked,
                locked_total = hub_books.locked_total + EXCLUDED.locked_total,
                hub_free = hub_books.hub_free + EXCLUDED.hub_free;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER basic_channels_books AFTER INSERT OR DELETE OR UPDATE OF status, assets, hub_free, hub_locked,
    locked_total ON basic_channels FOR EACH ROW EXECUTE FUNCTION basic_channels_books();

-- A uint256 as the hex string serde writes ("0x..."), as a number.
CREATE FUNCTION uint256_from_hex(h TEXT) RETURNS NUMERIC LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    digits TEXT := lower(regexp_replace(h, '^0x', ''));
    result NUMERIC := 0;
BEGIN
    FOR i IN 1 .. length(digits) LOOP
        result := result * 16 + (position(substr(digits, i, 1) IN '0123456789abcdef') - 1);
    END LOOP;
    RETURN result;
END $$;

-- Whether a virtual channel in `status` was accepted (its fees are earned).
CREATE FUNCTION virtual_accepted(status virtual_status) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('open', 'closing', 'closed');
$$;

CREATE FUNCTION virtual_channels_books() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign     INTEGER := 0;
    accepted virtual_channels;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_counts AS c (kind, status, shard, n) VALUES ('virtual', NEW.status::text, pg_backend_pid(), 1)
        ON CONFLICT (kind, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        IF virtual_accepted(NEW.status) THEN sign := 1; accepted := NEW; END IF;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO status_counts AS c (kind, status, shard, n) VALUES ('virtual', OLD.status::text, pg_backend_pid(), -1)
        ON CONFLICT (kind, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        IF virtual_accepted(OLD.status) THEN sign := -1; accepted := OLD; END IF;
    ELSIF OLD.status <> NEW.status THEN
        INSERT INTO status_counts AS c (kind, status, shard, n)
        VALUES ('virtual', OLD.status::text, pg_backend_pid(), -1), ('virtual', NEW.status::text, pg_backend_pid(), 1)
        ON CONFLICT (kind, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        -- Fees count once a virtual channel is accepted (and stop if it ever were not).
        IF virtual_accepted(NEW.status) AND NOT virtual_accepted(OLD.status) THEN sign := 1; accepted := NEW;
        ELSIF virtual_accepted(OLD.status) AND NOT virtual_accepted(NEW.status) THEN sign := -1; accepted := OLD;
        END IF;
    END IF;
    IF sign <> 0 THEN
        INSERT INTO fees_earned AS e (asset, shard, amount)
        SELECT decode(substr(a.value #>> '{}', 3), 'hex'), pg_backend_pid(), sign * uint256_from_hex(f.value #>> '{}')
        FROM jsonb_array_elements(accepted.initial -> 'outcome' -> 'assets') WITH ORDINALITY AS a (value, k)
        JOIN jsonb_array_elements(accepted.fees) WITH ORDINALITY AS f (value, k) USING (k)
        WHERE f.value #>> '{}' NOT IN ('0x0', '0')
        ON CONFLICT (asset, shard) DO UPDATE SET amount = e.amount + EXCLUDED.amount;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER virtual_channels_books AFTER INSERT OR DELETE OR UPDATE OF status ON virtual_channels
    FOR EACH ROW EXECUTE FUNCTION virtual_channels_books();

-- What exists now, in shard 0. The hub's coins of existing basic channels are added when the
-- hub fills in their books at its start (the trigger adds each row as it is filled).
INSERT INTO status_counts (kind, status, shard, n)
SELECT 'basic', status::text, 0, count(*) FROM basic_channels GROUP BY status
UNION ALL
SELECT 'virtual', status::text, 0, count(*) FROM virtual_channels GROUP BY status;

INSERT INTO fees_earned (asset, shard, amount)
SELECT decode(substr(a.value #>> '{}', 3), 'hex'), 0, sum(uint256_from_hex(f.value #>> '{}'))
FROM virtual_channels v,
     jsonb_array_elements(v.initial -> 'outcome' -> 'assets') WITH ORDINALITY AS a (value, k)
     JOIN jsonb_array_elements(v.fees) WITH ORDINALITY AS f (value, k) USING (k)
WHERE virtual_accepted(v.status) AND v.fees <> '[]'
GROUP BY 1;

-- Channels whose books the hub has yet to fill in.
CREATE INDEX basic_channels_books_missing ON basic_channels (id) WHERE assets IS NULL;

-- The metrics count failed outbox entries without reading the done ones.
CREATE INDEX outbox_failed ON outbox (id) WHERE status = 'failed';

-- A session that ends before its expiry (a login beyond the per-client cap ended it) is
-- announced, so every hub process drops it from its cache of sessions.
CREATE FUNCTION sessions_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ingrid_sessions', '0x' || encode(OLD.token_hash, 'hex'));
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_ended AFTER DELETE ON sessions FOR EACH ROW WHEN (OLD.expires_at > now())
    EXECUTE FUNCTION sessions_ended();

-- The caps of virtual channels per client count what a client holds now: from these partial
-- indexes, never from its whole history.
CREATE INDEX virtual_channels_live_first ON virtual_channels ((participants[1])) WHERE status IN ('open', 'closing');
CREATE INDEX virtual_channels_live_second ON virtual_channels ((participants[2])) WHERE status IN ('open', 'closing');
