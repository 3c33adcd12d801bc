-- Task ownership by lease: which process runs an unfinished task, and until when
-- (the database server's clock). A task with no owner, or an expired lease, may be
-- taken over by another process.

ALTER TABLE mqttpush_tasks ADD COLUMN owner text;
ALTER TABLE mqttpush_tasks ADD COLUMN lease_expires timestamptz;
CREATE INDEX mqttpush_tasks_by_owner ON mqttpush_tasks (owner) WHERE owner IS NOT NULL;
