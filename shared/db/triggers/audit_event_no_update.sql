-- The audit chain is append-only: no row is changed or removed.
CREATE OR REPLACE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON cutter_governance.audit_event
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.audit_refuse_change();
