-- Appends an audit event for the application (shared/audit/append.ts); the
-- chain trigger links it. Nobody but the functions that own them writes the
-- events the guarantees rest on: approval.accepted and approval.exec_granted
-- (store_approval), gate.released (open_gate), execute.applied (apply_plan).
-- A forged gate.released would hide the bypass alarm of a gate released by
-- hand, so this refuses those kinds (CA001).
CREATE OR REPLACE FUNCTION cutter_governance.append_audit(p_actor text, p_kind text, p_run_id text, p_detail jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_seq bigint;
BEGIN
  IF p_kind IN ('approval.accepted', 'approval.exec_granted', 'gate.released', 'execute.applied') THEN
    RAISE EXCEPTION 'audit events of kind % are written only by the function that owns them', p_kind USING ERRCODE = 'CA001';
  END IF;
  INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
  VALUES (0, now(), p_actor, p_kind, p_run_id, coalesce(p_detail, '{}'::jsonb), repeat('0', 64), repeat('0', 64))
  RETURNING seq INTO v_seq;
  RETURN v_seq;
END
$$;
