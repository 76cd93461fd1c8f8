-- The audit chain is append-only (triggers audit_event_no_update, audit_event_no_truncate).
CREATE OR REPLACE FUNCTION cutter_governance.audit_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
