-- Collateral top-ups are deposited on standby (AssetHolder.depositStandby): coins that fund
-- only a raised total both participants signed and otherwise return to the hub at
-- settlement. A top-up's target is now the hub's standby in the channel once it is
-- deposited (the sum of its top-ups of that channel and asset), which the watcher compares
-- with StandbyDeposited.total.
COMMENT ON COLUMN top_ups.target IS
    'The hub''s standby in the channel and asset once this top-up is deposited (all its top-ups summed).';
