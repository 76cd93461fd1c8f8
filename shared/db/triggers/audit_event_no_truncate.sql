-- Nor emptied at once.
CREATE OR REPLACE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON cutter_governance.audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.audit_refuse_change();
