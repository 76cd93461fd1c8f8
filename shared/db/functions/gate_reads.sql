-- What the approval gate decides on, read after its claim took the run's
-- row lock (shared/runs/store.ts, claimPhase): the change set's hash and
-- scope, the window's end, the unconsumed approvals, and whether the gate
-- already opened (its gate.released audit row, through the partial index
-- audit_event_gate_released).
--
-- store_approval stores under that lock, so everything it did not refuse has
-- committed before the claim gets the lock. A statement's snapshot is taken
-- when it starts, before any wait for the lock, so a plain sub-select of the
-- claim could miss such an approval; a VOLATILE PL/pgSQL function's
-- statement takes a snapshot of its own when it runs, after the lock.
CREATE OR REPLACE FUNCTION cutter_governance.gate_reads(p_run_id text)
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
                             WHERE d.run_id = p_run_id AND d.consumed_utc IS NULL),
             'opened', EXISTS (SELECT 1 FROM cutter_governance.audit_event e
                                WHERE e.run_id = p_run_id AND e.kind = 'gate.released'))
      FROM (SELECT 1) one
      LEFT JOIN cutter_governance.cut_change_set c ON c.run_id = p_run_id
  );
END
$$;
