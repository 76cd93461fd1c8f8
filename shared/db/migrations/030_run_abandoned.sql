-- A restore abandons the runs it finds in flight (issue 26): a restored
-- database never continues a run, and `failed` said a phase had failed
-- when none had. The change set of an abandoned run says so too (trigger
-- run_end_change_set).
ALTER TABLE cutter_governance.run DROP CONSTRAINT run_status_check;
ALTER TABLE cutter_governance.run ADD CONSTRAINT run_status_check
  CHECK (status IN ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'expired', 'cancelled', 'rejected', 'abandoned'));

ALTER TABLE cutter_governance.cut_change_set DROP CONSTRAINT cut_change_set_status_check;
ALTER TABLE cutter_governance.cut_change_set ADD CONSTRAINT cut_change_set_status_check
  CHECK (status IN ('planned', 'rehearsed', 'applied', 'failed', 'expired', 'cancelled', 'rejected', 'abandoned'));
