-- The run events people are told about enter the notification outbox with their audit row (function announce_audit_event).
CREATE OR REPLACE TRIGGER audit_event_announce AFTER INSERT ON cutter_governance.audit_event
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.announce_audit_event();
