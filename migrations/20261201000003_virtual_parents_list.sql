-- A virtual channel is stored with lists instead of one column per role, so that apps and
-- longer virtual channels (several hubs) add rows' entries instead of columns:
-- - participants: V's participants, in V's order (two: the proposer, then the acceptor);
-- - parents: the hub's basic channels that lock V, in V's participant order (today the
--   proposer's parent, then the acceptor's; NULL until that participant accepts);
-- - initial_sigs: the participants' signatures on the opening state (NULL until given);
-- - settled: per parent, whether the parent is settled after the close;
-- - app: the app V runs (the params' app; the zero address for payments only).
ALTER TABLE virtual_channels
    ADD COLUMN participants BYTEA[],
    ADD COLUMN parents      BYTEA[],
    ADD COLUMN initial_sigs BYTEA[],
    ADD COLUMN settled      BOOLEAN[],
    ADD COLUMN app          BYTEA;

UPDATE virtual_channels SET
    participants = ARRAY[proposer, acceptor],
    parents      = ARRAY[parent_proposer, parent_acceptor],
    initial_sigs = ARRAY[sig_proposer, sig_acceptor],
    settled      = ARRAY[settled_proposer, settled_acceptor],
    app          = decode(substr(params->>'app', 3), 'hex');

ALTER TABLE virtual_channels
    ALTER COLUMN participants SET NOT NULL,
    ALTER COLUMN parents SET NOT NULL,
    ALTER COLUMN initial_sigs SET NOT NULL,
    ALTER COLUMN settled SET NOT NULL,
    ALTER COLUMN app SET NOT NULL,
    ADD CONSTRAINT virtual_channels_app CHECK (length(app) = 20),
    ADD CONSTRAINT virtual_channels_lists CHECK (
        cardinality(participants) >= 2
        AND array_position(participants, NULL) IS NULL
        AND cardinality(initial_sigs) = cardinality(participants)
        AND cardinality(parents) >= 1
        AND cardinality(settled) = cardinality(parents)
        AND array_position(settled, NULL) IS NULL
    ),
    DROP COLUMN proposer,
    DROP COLUMN acceptor,
    DROP COLUMN parent_proposer,
    DROP COLUMN parent_acceptor,
    DROP COLUMN sig_proposer,
    DROP COLUMN sig_acceptor,
    DROP COLUMN settled_proposer,
    DROP COLUMN settled_acceptor;

-- "The virtual channels of a client" and "the virtual channels a parent locks".
CREATE INDEX virtual_channels_participants ON virtual_channels USING GIN (participants);
CREATE INDEX virtual_channels_parents ON virtual_channels USING GIN (parents);

COMMENT ON COLUMN virtual_channels.parents IS
    'The basic channels locking this virtual channel, in participant order; NULL until that participant accepted.';

-- The foreign keys the old columns had (an array cannot carry one): every participant is a
-- client and every parent a basic channel of the hub.
CREATE FUNCTION virtual_channels_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(NEW.participants) AS p (address)
               WHERE NOT EXISTS (SELECT 1 FROM clients c WHERE c.address = p.address)) THEN
        RAISE EXCEPTION 'virtual channel participant is not a client' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(NEW.parents) AS p (id)
               WHERE p.id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM basic_channels b WHERE b.id = p.id)) THEN
        RAISE EXCEPTION 'virtual channel parent is not a basic channel' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER virtual_channels_references BEFORE INSERT OR UPDATE OF participants, parents ON virtual_channels
    FOR EACH ROW EXECUTE FUNCTION virtual_channels_references();
