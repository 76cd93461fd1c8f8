-- Whether the kill switch is on (for that run, when given). SECURITY DEFINER:
-- the exec role may ask without reading the switch's table.
CREATE OR REPLACE FUNCTION cutter_governance.execution_enabled(p_run_id text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(bool_or(s.enabled AND s.expires_at > now() AND (p_run_id IS NULL OR s.run_id = p_run_id)), false)
  FROM cutter_governance.execution_switch s
$$;
