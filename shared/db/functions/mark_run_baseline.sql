-- Records the server's snapshot as a run's baseline mark, once: a retried
-- precheck keeps the first (earlier) mark, which can only count more writes
-- against the run, never fewer. Returns the mark (pg_snapshot text).
-- SECURITY DEFINER: the application calls it, but writes no mark itself.
CREATE OR REPLACE FUNCTION cutter_governance.mark_run_baseline(p_run_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO cutter_governance.run_write_mark (run_id, mark) VALUES (p_run_id, pg_current_snapshot())
  ON CONFLICT (run_id) DO NOTHING;
  RETURN (SELECT m.mark::text FROM cutter_governance.run_write_mark m WHERE m.run_id = p_run_id);
END
$$;
