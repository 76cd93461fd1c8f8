-- The approval gate read its run and approvals from PostgreSQL in a round
-- trip of its own (peekGate) before the one that opens it, although the
-- endpoint that released it had read exactly that moments before, in the
-- commit that stored the completing approval. That read now travels with the
-- release: store_approval answers with gate_handoff (the run row and
-- gate_reads, in one canonical form), the endpoint leaves it in Redis beside
-- the gate's job, and the gate judges it (signatures, binding, expiry,
-- quorum) and asks open_gate to open only if PostgreSQL, under the run's
-- lock, still holds exactly that (p_judged). So the gate still decides on
-- what PostgreSQL holds, now checked in the very commit that consumes it:
-- anything else in Redis (absent, tampered, stale) is CG003, nothing changes,
-- and the gate reads PostgreSQL itself as before.
--
-- TimeZone is fixed so the form does not depend on the session: the
-- endpoint's and the gate's connections must produce the same text for the
-- same rows.
CREATE FUNCTION cutter_governance.gate_handoff(p_run_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC'
AS $$
BEGIN
  RETURN jsonb_build_object(
    'run', (SELECT to_jsonb(r) FROM cutter_governance.run r WHERE r.run_id = p_run_id),
    'reads', cutter_governance.gate_reads(p_run_id));
END
$$;

-- As in migration 012, but a stored approval is answered with the run's
-- gate_handoff (its unconsumed approvals are in it) instead of those alone.
DROP FUNCTION cutter_governance.store_approval(text, text, text, text, text, text, text, text, timestamptz, timestamptz, text, jsonb);

CREATE FUNCTION cutter_governance.store_approval(
  p_run_id text, p_gate text, p_key_id text, p_key_name text, p_document text, p_signature text,
  p_nonce text, p_plan_sha256 text, p_signed_utc timestamptz, p_expires_utc timestamptz,
  p_actor text, p_audit_detail jsonb)
RETURNS TABLE (outcome text, decision_id bigint, run_status text, window_ends_at timestamptz, other_run_id text, handoff text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
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
    RETURN QUERY SELECT 'not_awaiting', NULL::bigint, v_status, v_ends, NULL::text, NULL::text;
    RETURN;
  END IF;
  -- now() is this transaction's start, the received_utc the decision would
  -- get: the gate counts only approvals received before the window's end.
  IF v_ends <= now() THEN
    RETURN QUERY SELECT 'window_over', NULL::bigint, v_status, v_ends, NULL::text, NULL::text;
    RETURN;
  END IF;
  SELECT d.run_id, d.nonce = p_nonce AS same_nonce INTO v_used
    FROM cutter_governance.review_decision d
   WHERE d.nonce = p_nonce OR (d.run_id = p_run_id AND d.gate = p_gate AND d.key_id = p_key_id)
   ORDER BY (d.nonce = p_nonce) DESC LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT CASE WHEN v_used.same_nonce THEN 'nonce_replayed' ELSE 'key_already_used' END,
                        NULL::bigint, v_status, v_ends, v_used.run_id, NULL::text;
    RETURN;
  END IF;
  IF p_gate = 'EXEC' THEN
    -- The switch is one row: on for one run at a time. Another live run's
    -- unexpired grant keeps it; a grant of a run that has ended does not.
    -- Locked first, so two grants for different runs cannot both see it free.
    SELECT s.enabled, s.expires_at, s.run_id INTO v_switch FROM cutter_governance.execution_switch s FOR UPDATE;
    IF v_switch.enabled AND v_switch.expires_at > now() AND v_switch.run_id <> p_run_id
       AND EXISTS (SELECT 1 FROM cutter_governance.run r
                    WHERE r.run_id = v_switch.run_id AND r.status IN ('queued', 'running', 'awaiting_approval')) THEN
      RETURN QUERY SELECT 'switch_busy', NULL::bigint, v_status, v_ends, v_switch.run_id, NULL::text;
      RETURN;
    END IF;
  END IF;
  INSERT INTO cutter_governance.review_decision
    (run_id, gate, key_id, key_name, document, signature, nonce, plan_sha256, signed_utc, expires_utc)
  VALUES (p_run_id, p_gate, p_key_id, p_key_name, p_document, p_signature, p_nonce, p_plan_sha256, p_signed_utc, p_expires_utc)
  RETURNING id INTO v_id;
  IF p_gate = 'EXEC' THEN
    UPDATE cutter_governance.execution_switch
       SET enabled = true, run_id = p_run_id, expires_at = p_expires_utc, changed_at = now(), changed_by = p_actor;
  END IF;
  INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
  VALUES (0, now(), p_actor, CASE p_gate WHEN 'EXEC' THEN 'approval.exec_granted' ELSE 'approval.accepted' END,
          p_run_id, p_audit_detail || jsonb_build_object('decision_id', v_id), repeat('0', 64), repeat('0', 64));
  RETURN QUERY SELECT 'stored', v_id, v_status, v_ends, NULL::text, cutter_governance.gate_handoff(p_run_id)::text;
END
$$;

-- As in migration 016, plus p_judged: the gate_handoff the gate judged, or
-- null when it judged what it read itself. CG003: PostgreSQL no longer holds
-- exactly that; the call changed nothing.
DROP FUNCTION cutter_governance.open_gate(text, bigint[], text, jsonb, jsonb, boolean, timestamptz);

CREATE FUNCTION cutter_governance.open_gate(
  p_run_id text, p_ids bigint[], p_actor text, p_audit_detail jsonb, p_phase_summary jsonb,
  p_claimed boolean, p_started_at timestamptz, p_judged jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_status text;
  v_count  integer;
BEGIN
  -- The lock storeDecision takes: no approval of this run is half stored now.
  SELECT r.status INTO v_status FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
  IF v_status IS NULL OR v_status NOT IN ('awaiting_approval', 'running') THEN
    RAISE EXCEPTION 'run % is %, not in flight', p_run_id, coalesce(v_status, 'gone') USING ERRCODE = 'CG002';
  END IF;
  -- Judged on a handoff: open only on exactly what was judged, as it stands now, under the lock.
  IF p_judged IS NOT NULL AND cutter_governance.gate_handoff(p_run_id) IS DISTINCT FROM p_judged THEN
    RAISE EXCEPTION 'run %: the run or its approvals are no longer what the gate judged', p_run_id USING ERRCODE = 'CG003';
  END IF;
  UPDATE cutter_governance.review_decision SET consumed_utc = now()
   WHERE run_id = p_run_id AND id = ANY (p_ids) AND consumed_utc IS NULL;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count <> cardinality(p_ids) THEN
    RAISE EXCEPTION 'run %: % of % approvals were no longer unconsumed', p_run_id, cardinality(p_ids) - v_count, cardinality(p_ids)
      USING ERRCODE = 'CG001';
  END IF;
  UPDATE cutter_governance.run
     SET status = 'running', phase = 'approval-gate', started_at = coalesce(started_at, now()), updated_at = now()
   WHERE run_id = p_run_id;
  INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
  VALUES (0, now(), p_actor, 'gate.released', p_run_id, p_audit_detail, repeat('0', 64), repeat('0', 64));
  INSERT INTO cutter_governance.run_phase (run_id, phase, state, started_at, finished_at, summary)
  VALUES (p_run_id, 'approval-gate', 'completed', coalesce(p_started_at, now()), now(), p_phase_summary)
  ON CONFLICT (run_id, phase) DO UPDATE
    SET state = 'completed', finished_at = now(), summary = p_phase_summary, error = NULL, error_code = NULL,
        attempts = CASE WHEN p_claimed THEN run_phase.attempts ELSE run_phase.attempts + 1 END,
        started_at = CASE WHEN p_claimed THEN run_phase.started_at ELSE coalesce(p_started_at, now()) END;
END
$$;
