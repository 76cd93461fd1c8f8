-- A run that ends failed, expired, cancelled, rejected or abandoned before its change
-- set was applied leaves the change set saying so, whichever way it ended
-- (a phase failing, the gate expiring, stop_run, a restore, the
-- reconciler): the status is set here, once, rather than on each path. A
-- change set already applied keeps `applied`: that is what happened to it.
CREATE OR REPLACE FUNCTION cutter_governance.record_change_set_end()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NEW.status IN ('failed', 'expired', 'cancelled', 'rejected', 'abandoned') AND NEW.status IS DISTINCT FROM OLD.status THEN
    UPDATE cutter_governance.cut_change_set SET status = NEW.status
     WHERE run_id = NEW.run_id AND status IN ('planned', 'rehearsed');
  END IF;
  RETURN NULL;
END
$$;
