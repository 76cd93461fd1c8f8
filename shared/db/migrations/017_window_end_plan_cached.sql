-- approval_window_ends_at (migration 012) was a LANGUAGE sql function with a
-- FROM clause and a SET search_path: PostgreSQL cannot inline such a
-- function, and called from PL/pgSQL (store_approval, gate_reads) it planned
-- its join again on every call: 87 us of server time each, measured in a
-- loop, on the path from the completing approval to execute (once in the
-- store, once in the gate's read). The same query in PL/pgSQL keeps its plan
-- for the session. Same definition, same answer.
CREATE OR REPLACE FUNCTION cutter_governance.approval_window_ends_at(p_run_id text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN (
    SELECT p.finished_at + make_interval(secs => r.approval_window_s)
      FROM cutter_governance.run r
      JOIN cutter_governance.run_phase p ON p.run_id = r.run_id AND p.phase = 'cutplan' AND p.state = 'completed'
     WHERE r.run_id = p_run_id
  );
END
$$;
