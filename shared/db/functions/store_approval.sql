-- Stores one validated approval (shared/approval/store.ts) in one round
-- trip. The run row is locked, so one run's approvals are taken one at a
-- time; each PL/pgSQL statement takes a fresh snapshot, so every read after
-- the lock wait sees what the lock holder committed. A refusal writes nothing
-- and says which check refused it (outcome). The nonce's single use and one
-- decision per key and gate are still the UNIQUE constraints' (a twin that
-- raced past the checks gets 23505).
--
-- A rejection (gate REJECT, p_reason its signed reason) passes the same
-- checks and is stored consumed at once: it ends the run `rejected` in this
-- transaction (stop_run, which audits run.rejected), so no gate ever counts it.
CREATE OR REPLACE FUNCTION cutter_governance.store_approval(
  p_run_id text, p_gate text, p_key_id text, p_key_name text, p_document text, p_signature text,
  p_nonce text, p_plan_sha256 text, p_signed_utc timestamptz, p_expires_utc timestamptz,
  p_actor text, p_audit_detail jsonb, p_reason text)
RETURNS TABLE (outcome text, decision_id bigint, run_status text, window_ends_at timestamptz, other_run_id text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_status text;
  v_ends   timestamptz;
  v_used   record;
  v_switch record;
  v_id     bigint;
BEGIN
  SELECT r.status INTO v_status FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
  v_ends := cutter_governance.approval_window_ends_at(p_run_id);
  IF v_status IS DISTINCT FROM 'awaiting_approval' THEN
    RETURN QUERY SELECT 'not_awaiting', NULL::bigint, v_status, v_ends, NULL::text;
    RETURN;
  END IF;
  -- now() is this transaction's start, the received_utc the decision would
  -- get: the gate counts only approvals received before the window's end.
  IF v_ends <= now() THEN
    RETURN QUERY SELECT 'window_over', NULL::bigint, v_status, v_ends, NULL::text;
    RETURN;
  END IF;
  SELECT d.run_id, d.nonce = p_nonce AS same_nonce INTO v_used
    FROM cutter_governance.review_decision d
   WHERE d.nonce = p_nonce OR (d.run_id = p_run_id AND d.gate = p_gate AND d.key_id = p_key_id)
   ORDER BY (d.nonce = p_nonce) DESC LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT CASE WHEN v_used.same_nonce THEN 'nonce_replayed' ELSE 'key_already_used' END,
                        NULL::bigint, v_status, v_ends, v_used.run_id;
    RETURN;
  END IF;
  IF p_gate = 'EXEC' THEN
    -- The switch is one row: on for one run at a time. Another live run's
    -- unexpired grant keeps it; a grant of a run that has ended does not.
    -- Locked first, so two grants for different runs cannot both see it free.
    SELECT s.enabled, s.expires_at, s.run_id INTO v_switch FROM cutter_governance.execution_switch s FOR UPDATE;
    IF v_switch.enabled AND v_switch.expires_at > now() AND v_switch.run_id <> p_run_id
       AND EXISTS (SELECT 1 FROM cutter_governance.run r
                    WHERE r.run_id = v_switch.run_id AND cutter_governance.run_in_flight(r.status)) THEN
      RETURN QUERY SELECT 'switch_busy', NULL::bigint, v_status, v_ends, v_switch.run_id;
      RETURN;
    END IF;
  END IF;
  INSERT INTO cutter_governance.review_decision
    (run_id, gate, key_id, key_name, document, signature, nonce, plan_sha256, signed_utc, expires_utc, reason, consumed_utc)
  VALUES (p_run_id, p_gate, p_key_id, p_key_name, p_document, p_signature, p_nonce, p_plan_sha256, p_signed_utc, p_expires_utc,
          p_reason, CASE WHEN p_gate = 'REJECT' THEN now() END)
  RETURNING id INTO v_id;
  IF p_gate = 'REJECT' THEN
    PERFORM * FROM cutter_governance.stop_run(p_run_id, 'rejected', p_actor, p_reason,
                                              p_audit_detail || jsonb_build_object('decision_id', v_id, 'reason', p_reason));
    RETURN QUERY SELECT 'stored', v_id, v_status, v_ends, NULL::text;
    RETURN;
  END IF;
  IF p_gate = 'EXEC' THEN
    UPDATE cutter_governance.execution_switch
       SET enabled = true, run_id = p_run_id, expires_at = p_expires_utc, changed_at = now(), changed_by = p_actor;
  END IF;
  INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
  VALUES (0, now(), p_actor, CASE p_gate WHEN 'EXEC' THEN 'approval.exec_granted' ELSE 'approval.accepted' END,
          p_run_id, p_audit_detail || jsonb_build_object('decision_id', v_id), repeat('0', 64), repeat('0', 64));
  RETURN QUERY SELECT 'stored', v_id, v_status, v_ends, NULL::text;
END
$$;
