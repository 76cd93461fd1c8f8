-- Turning the switch off is the one write the exec role may make to it.
CREATE OR REPLACE FUNCTION cutter_governance.disarm_execution(p_actor text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE cutter_governance.execution_switch
     SET enabled = false, run_id = NULL, expires_at = NULL, changed_at = now(), changed_by = p_actor
$$;
