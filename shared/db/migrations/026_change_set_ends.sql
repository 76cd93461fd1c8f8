-- A change set says how it ended (issue 27): applied by its run, or the
-- way its run ended before applying it. Trigger run_end_change_set
-- (shared/db/triggers/) keeps it so from now on; this catches up the past.
ALTER TABLE cutter_governance.cut_change_set DROP CONSTRAINT cut_change_set_status_check;
ALTER TABLE cutter_governance.cut_change_set ADD CONSTRAINT cut_change_set_status_check
  CHECK (status IN ('planned', 'rehearsed', 'applied', 'failed', 'expired', 'cancelled', 'rejected'));

UPDATE cutter_governance.cut_change_set c
   SET status = r.status
  FROM cutter_governance.run r
 WHERE r.run_id = c.run_id
   AND c.status IN ('planned', 'rehearsed')
   AND r.status IN ('failed', 'expired', 'cancelled', 'rejected');
