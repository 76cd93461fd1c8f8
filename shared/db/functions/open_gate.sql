-- Opens a run's approval gate (shared/approval/gate.ts): consumes exactly the
-- approvals that opened it, once, and audits it with its gate.released row,
-- in one commit. True when this call opened the gate; false when a twin
-- delivery of the gate already opened it with these approvals (nothing
-- changes). CG002: the run is gone or no longer in flight. CG001: the
-- approvals were consumed otherwise, or only some of them now; either rolls
-- the whole call back, so nothing is half done.
CREATE OR REPLACE FUNCTION cutter_governance.open_gate(p_run_id text, p_ids bigint[], p_actor text, p_audit_detail jsonb)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_status text;
  v_count  integer;
BEGIN
  -- The lock store_approval takes: no approval of this run is half stored now.
  SELECT r.status INTO v_status FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR UPDATE;
  IF v_status IS NULL OR NOT cutter_governance.run_in_flight(v_status) THEN
    RAISE EXCEPTION 'run % is %, not in flight', p_run_id, coalesce(v_status, 'gone') USING ERRCODE = 'CG002';
  END IF;
  UPDATE cutter_governance.review_decision SET consumed_utc = now()
   WHERE run_id = p_run_id AND id = ANY (p_ids) AND consumed_utc IS NULL;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count = cardinality(p_ids) THEN
    INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
    VALUES (0, now(), p_actor, 'gate.released', p_run_id, p_audit_detail, repeat('0', 64), repeat('0', 64));
    RETURN true;
  END IF;
  IF v_count = 0 AND EXISTS (SELECT 1 FROM cutter_governance.audit_event e
                              WHERE e.run_id = p_run_id AND e.kind = 'gate.released') THEN
    RETURN false;
  END IF;
  RAISE EXCEPTION 'run %: % of % approvals were no longer unconsumed', p_run_id, cardinality(p_ids) - v_count, cardinality(p_ids)
    USING ERRCODE = 'CG001';
END
$$;
