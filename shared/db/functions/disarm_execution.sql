-- Turns the kill switch off if it is on for this run, and only then: another
-- run's grant is not this run's to revoke. The one way the switch goes off
-- (apply_plan, a run failing or found lost); it goes on only through an EXEC
-- grant (store_approval).
CREATE OR REPLACE FUNCTION cutter_governance.disarm_execution(p_run_id text, p_actor text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE cutter_governance.execution_switch
     SET enabled = false, run_id = NULL, expires_at = NULL, changed_at = now(), changed_by = p_actor
   WHERE run_id = p_run_id
$$;
