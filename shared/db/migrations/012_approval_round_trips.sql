-- The approval path waited on a round trip per statement: storing an
-- approval was BEGIN, the run lock and its checks, the kill switch, the
-- decision, the audit row, COMMIT and a re-read of the run's approvals (7
-- round trips), and the gate's consumption another 4. These functions do the
-- same statements, in the same order and under the same locks, inside the
-- server: one round trip each. A PL/pgSQL statement takes a fresh snapshot,
-- so every read after a lock wait still sees what the lock holder committed,
-- exactly as the separate statements did.

-- When a run's approval window ends: cutplan's finish + the window, null
-- before the plan exists. The one definition, in the database's clock, for
-- the gate, the submit's checks and the store below, so "received before the
-- end" means the same thing to each of them.
CREATE FUNCTION cutter_governance.approval_window_ends_at(p_run_id text)
RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p.finished_at + make_interval(secs => r.approval_window_s)
    FROM cutter_governance.run r
    JOIN cutter_governance.run_phase p ON p.run_id = r.run_id AND p.phase = 'cutplan' AND p.state = 'completed'
   WHERE r.run_id = p_run_id
$$;

-- Stores one validated approval (shared/approval/store.ts): the run row is
-- locked, so one run's approvals are taken one at a time; a refusal writes
-- nothing and says which check refused it (outcome). The nonce's single use
-- and one decision per key and gate are still the UNIQUE constraints'
-- (a twin that raced past the checks gets 23505). On success the answer also
-- carries the run's unconsumed approvals, this one included, read after the
-- insert: the last of two concurrent approvals always sees both.
CREATE FUNCTION cutter_governance.store_approval(
  p_run_id text, p_gate text, p_key_id text, p_key_name text, p_document text, p_signature text,
  p_nonce text, p_plan_sha256 text, p_signed_utc timestamptz, p_expires_utc timestamptz,
  p_actor text, p_audit_detail jsonb)
RETURNS TABLE (outcome text, decision_id bigint, run_status text, window_ends_at timestamptz, other_run_id text, unconsumed jsonb)
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
    RETURN QUERY SELECT 'not_awaiting', NULL::bigint, v_status, v_ends, NULL::text, NULL::jsonb;
    RETURN;
  END IF;
  -- now() is this transaction's start, the received_utc the decision would
  -- get: the gate counts only approvals received before the window's end.
  IF v_ends <= now() THEN
    RETURN QUERY SELECT 'window_over', NULL::bigint, v_status, v_ends, NULL::text, NULL::jsonb;
    RETURN;
  END IF;
  SELECT d.run_id, d.nonce = p_nonce AS same_nonce INTO v_used
    FROM cutter_governance.review_decision d
   WHERE d.nonce = p_nonce OR (d.run_id = p_run_id AND d.gate = p_gate AND d.key_id = p_key_id)
   ORDER BY (d.nonce = p_nonce) DESC LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT CASE WHEN v_used.same_nonce THEN 'nonce_replayed' ELSE 'key_already_used' END,
                        NULL::bigint, v_status, v_ends, v_used.run_id, NULL::jsonb;
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
      RETURN QUERY SELECT 'switch_busy', NULL::bigint, v_status, v_ends, v_switch.run_id, NULL::jsonb;
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
  RETURN QUERY
    SELECT 'stored', v_id, v_status, v_ends, NULL::text,
           (SELECT coalesce(jsonb_agg(jsonb_build_object(
                     'id', d.id, 'gate', d.gate, 'key_id', d.key_id, 'document', d.document, 'signature', d.signature,
                     'nonce', d.nonce, 'received_utc', d.received_utc, 'consumed_utc', d.consumed_utc) ORDER BY d.id), '[]'::jsonb)
              FROM cutter_governance.review_decision d
             WHERE d.run_id = p_run_id AND d.consumed_utc IS NULL);
END
$$;

-- Consumes exactly the approvals that opened a gate, once, and audits it
-- (shared/approval/gate.ts). Any of them already consumed (a twin delivery
-- of the gate got there first) raises CG001, which rolls the whole call
-- back, so nothing is ever half consumed; the row locks of the UPDATE make
-- the twin wait for the first to commit.
CREATE FUNCTION cutter_governance.consume_approvals(p_run_id text, p_ids bigint[], p_actor text, p_audit_detail jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_count integer;
BEGIN
  UPDATE cutter_governance.review_decision SET consumed_utc = now()
   WHERE run_id = p_run_id AND id = ANY (p_ids) AND consumed_utc IS NULL;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count <> cardinality(p_ids) THEN
    RAISE EXCEPTION 'run %: % of % approvals were no longer unconsumed', p_run_id, cardinality(p_ids) - v_count, cardinality(p_ids)
      USING ERRCODE = 'CG001';
  END IF;
  INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
  VALUES (0, now(), p_actor, 'gate.released', p_run_id, p_audit_detail, repeat('0', 64), repeat('0', 64));
END
$$;
