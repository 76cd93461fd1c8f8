-- The gate's consumption and its phase's completion were two commits in a
-- row, each waiting on a WAL flush (3-4 ms apiece on these machines, most of
-- the approval path's latency). They belong together anyway: the approvals
-- are consumed exactly when the gate phase is recorded completed, so a crash
-- between the two can no longer leave consumed approvals behind a gate
-- that shows as still active. Same statements as 012's consume_approvals, in
-- the same order, plus the phase row.
DROP FUNCTION cutter_governance.consume_approvals(text, bigint[], text, jsonb);

CREATE FUNCTION cutter_governance.consume_approvals(
  p_run_id text, p_ids bigint[], p_actor text, p_audit_detail jsonb, p_phase_summary jsonb)
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
  UPDATE cutter_governance.run_phase SET state = 'completed', finished_at = now(), summary = p_phase_summary
   WHERE run_id = p_run_id AND phase = 'approval-gate';
END
$$;
