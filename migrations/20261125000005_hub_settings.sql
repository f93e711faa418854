-- Operator switches shared by every hub process on this database (one row).
CREATE TABLE hub_settings (
    id                      BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    -- New virtual channels refused (proposals and accepts), e.g. to drain before maintenance.
    virtual_paused          BOOLEAN NOT NULL DEFAULT false,
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO hub_settings DEFAULT VALUES;
