-- The run's enqueuing login is recorded by the server, never sent by the client (function record_enqueued_by).
CREATE OR REPLACE TRIGGER run_enqueued_by BEFORE INSERT OR UPDATE OF enqueued_by ON cutter_governance.run
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.record_enqueued_by();
