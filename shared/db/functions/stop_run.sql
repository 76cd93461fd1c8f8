-- Ends a run that was said no to: `cancelled` (cutter cancel) or `rejected`
-- (a signed REJECT, through store_approval). shared/runs/stop.ts calls it
-- and writes the report in the same transaction; the run's jobs are removed
-- from Redis after the commit (shared/jobs/cleanup.ts).
--
-- The run row's lock decides against everything else that moves the run:
-- a phase's claim, the gate's commit (open_gate) and store_approval take the
-- same lock, and apply_plan reads the run under it. So a stop and the claim
-- of execute are ordered by PostgreSQL: a stop that commits first leaves
-- execute nothing to claim (the run is no longer in flight), and a claim of
-- execute that commits first makes the stop refuse (execute_begun). Each
-- statement after the lock takes a fresh snapshot, so the phase rows read
-- are those committed by whoever held the lock before.
--
-- outcome: stopped (this call ended it), already (it ended with p_status
-- before), ended (it ended otherwise: run_status says how), execute_begun
-- (run_phase says which phase), unknown (no such run). Only `stopped`
-- changes anything: the run ends, its corpus lock is released, its staged
-- snapshot dropped, the kill switch turned off if it was on for this run,
-- a phase still active marked skipped, and run.<p_status> is audited.
CREATE OR REPLACE FUNCTION cutter_governance.stop_run(
  p_run_id text, p_status text, p_actor text, p_reason text, p_audit_detail jsonb)
RETURNS TABLE (outcome text, run_status text, run_phase text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_run   record;
  v_begun text;
  v_code  text := CASE p_status WHEN 'cancelled' THEN 'RUN_CANCELLED' WHEN 'rejected' THEN 'RUN_REJECTED' END;
BEGIN
  IF v_code IS NULL THEN
    RAISE EXCEPTION 'a run is stopped as cancelled or rejected, not %', p_status USING ERRCODE = '22023';
  END IF;
  SELECT r.status, r.phase INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unknown', NULL::text, NULL::text;
    RETURN;
  END IF;
  IF v_run.status = p_status THEN
    RETURN QUERY SELECT 'already', v_run.status, v_run.phase;
    RETURN;
  END IF;
  IF NOT cutter_governance.run_in_flight(v_run.status) THEN
    RETURN QUERY SELECT 'ended', v_run.status, v_run.phase;
    RETURN;
  END IF;
  SELECT f.phase INTO v_begun FROM cutter_governance.run_phase f
   WHERE f.run_id = p_run_id AND f.phase IN ('execute', 'verify')
   ORDER BY f.started_at DESC LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT 'execute_begun', v_run.status, v_begun;
    RETURN;
  END IF;
  UPDATE cutter_governance.run
     SET status = p_status, error_code = v_code, error_message = p_reason,
         finished_at = now(), updated_at = now()
   WHERE run_id = p_run_id;
  -- A phase that was running goes on until it notices (an active job cannot
  -- be taken from its worker); it will not record a result for a stopped run.
  UPDATE cutter_governance.run_phase
     SET state = 'skipped', finished_at = now(), error_code = v_code, error = 'the run was ' || p_status || ' while this phase ran'
   WHERE run_id = p_run_id AND state = 'active';
  DELETE FROM cutter_governance.corpus_lock WHERE run_id = p_run_id;
  DELETE FROM cutter_governance.snapshot_record WHERE run_id = p_run_id;
  PERFORM cutter_governance.disarm_execution(p_run_id, p_actor);
  PERFORM cutter_governance.append_audit(p_actor, 'run.' || p_status, p_run_id,
                                        p_audit_detail || jsonb_build_object('phase', v_run.phase, 'login', session_user));
  RETURN QUERY SELECT 'stopped', p_status, v_run.phase;
END
$$;
