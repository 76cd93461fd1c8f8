-- Every audit row is linked into the hash chain as it is inserted.
CREATE OR REPLACE TRIGGER audit_event_chain BEFORE INSERT ON cutter_governance.audit_event
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.audit_chain_row();
