-- When a run's approval window ends: cutplan's finish + the window, null
-- before the plan exists. The one definition, in the database's clock, for
-- the gate, the submit's checks and store_approval, so "received before the
-- end" means the same thing to each of them.
--
-- PL/pgSQL rather than LANGUAGE sql: a sql function with a FROM clause and a
-- SET search_path is never inlined, and called from PL/pgSQL it would plan
-- its join again on every call; PL/pgSQL keeps the plan for the session.
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
