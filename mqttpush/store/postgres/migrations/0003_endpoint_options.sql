-- A registration's options (filter, format, rate) as JSON, or NULL for the defaults.

ALTER TABLE mqttpush_endpoints ADD COLUMN options text;
