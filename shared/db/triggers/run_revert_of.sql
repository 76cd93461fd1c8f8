-- What a run reverts is checked when it is enqueued and fixed afterwards (function check_run_revert).
CREATE OR REPLACE TRIGGER run_revert_of BEFORE INSERT OR UPDATE OF revert_of, revert_skip_drifted ON cutter_governance.run
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.check_run_revert();
