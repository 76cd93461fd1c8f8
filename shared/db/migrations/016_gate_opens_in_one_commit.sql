-- The approval gate claimed its phase (a commit: run running, phase row
-- active, migration 015's reads after the run's lock), judged the approvals,
-- then consumed them (a second commit, migration 013). When the approvals
-- are complete, which is every release by the approval endpoint, the claim
-- decided nothing: the gate now reads first without a lock
-- (shared/runs/store.ts peekGate) and, if the approvals it read are valid,
-- opens in one commit that claims and completes the phase and consumes them
-- together. Everything else (an incomplete tally: a window's end, a promote
-- by hand, a redelivery) still claims under the run's lock and decides on
-- what it reads after that lock, as before.
--
-- An approval stored between the read and this commit is not lost or
-- miscounted: the gate consumes exactly the approvals it judged, and later
-- ones stay unconsumed behind a run that no longer awaits approval.
--
-- The opening's commit waits for the WAL flush, unlike the phase claims:
-- backup starts on it at once, and an opening lost to a database crash looks
-- exactly like a gate that never opened (execute then refuses, rightly, and
-- the run fails). Measured: with an asynchronous commit here, an immediate
-- stop of PostgreSQL while the run was in backup failed the run with
-- EXECUTE_NOT_APPROVED, where a durable opening lets it go on.

DROP FUNCTION cutter_governance.consume_approvals(text, bigint[], text, jsonb, jsonb);

-- p_claimed: this attempt already claimed the phase (claimPhase), so the
-- phase row's attempts and start stay as the claim set them; otherwise the
-- open is this attempt's claim, started at p_started_at (the read's time).
-- Raises CG001 when any approval is no longer unconsumed (a twin delivery
-- of the gate got there first) and CG002 when the run is no longer in
-- flight; either rolls the whole call back, so nothing is half done.
CREATE FUNCTION cutter_governance.open_gate(
  p_run_id text, p_ids bigint[], p_actor text, p_audit_detail jsonb, p_phase_summary jsonb,
  p_claimed boolean, p_started_at timestamptz)
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
