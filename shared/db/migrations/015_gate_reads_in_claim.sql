-- The approval gate read its run (plan hash, scope, window) and the run's
-- unconsumed approvals in a round trip of its own after the round trip that
-- claimed its phase. Those reads now ride in the claim's statement
-- (shared/runs/store.ts, claimPhase for approval-gate): one round trip fewer
-- on the path from the completing approval to execute.
--
-- The approvals must be read after the claim took the run's row lock:
-- storeDecision stores under that lock and checks the run is still awaiting
-- approval, so everything it did not refuse has committed before the claim
-- gets the lock, and the gate must see it. A statement's own snapshot is taken
-- when it starts, before any wait for that lock, so a plain sub-select of the
-- claim could miss an approval whose commit the claim waited for. Hence a
-- VOLATILE PL/pgSQL function, called on the claimed row: in READ COMMITTED
-- its statement takes a snapshot of its own when it runs, after the lock.
CREATE FUNCTION cutter_governance.gate_reads(p_run_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (
    SELECT jsonb_build_object(
             'plan_sha256', c.plan_sha256,
             'unit_count', c.unit_count,
             'by_transition', c.by_transition,
             'window_ends_at', cutter_governance.approval_window_ends_at(p_run_id),
             'unconsumed', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                    'id', d.id, 'gate', d.gate, 'key_id', d.key_id, 'document', d.document,
                                    'signature', d.signature, 'nonce', d.nonce, 'received_utc', d.received_utc,
                                    'consumed_utc', d.consumed_utc) ORDER BY d.id), '[]'::jsonb)
                              FROM cutter_governance.review_decision d
                             WHERE d.run_id = p_run_id AND d.consumed_utc IS NULL))
      FROM (SELECT 1) one
      LEFT JOIN cutter_governance.cut_change_set c ON c.run_id = p_run_id
  );
END
$$;
