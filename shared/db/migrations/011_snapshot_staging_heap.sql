-- Staging a snapshot is a bulk append of one run's rows, read back whole by
-- the plan and deleted whole at the run's end. Maintaining the (run_id, key)
-- primary key doubled the cost of that append (a million rows: 3.6 s with it,
-- 1.7 s without, measured server-side on the bench machine). Keys are proven
-- unique by the staging pass itself (shared/snapshot/stage.ts), so the
-- primary key checked nothing twice; a BRIN index finds a run's rows (they
-- are appended together, so they sit in their own block ranges) at almost no
-- cost to the append.
ALTER TABLE cutter_governance.snapshot_record DROP CONSTRAINT snapshot_record_pkey;
CREATE INDEX snapshot_record_run_brin ON cutter_governance.snapshot_record USING brin (run_id);
