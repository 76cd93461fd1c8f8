-- A change set says how its run ended (function record_change_set_end).
CREATE OR REPLACE TRIGGER run_end_change_set AFTER UPDATE OF status ON cutter_governance.run
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.record_change_set_end();
