-- What a run reverts is fixed when it is enqueued (DESIGN §2, run.revert_of):
-- only a live run that succeeded and whose plan the ledger holds, of the same
-- target and corpus; afterwards neither revert_of nor revert_skip_drifted
-- changes, so no run is turned into a revert (or out of one) later.
-- Error CX012.
CREATE OR REPLACE FUNCTION cutter_governance.check_run_revert()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_of record;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.revert_of IS DISTINCT FROM OLD.revert_of OR NEW.revert_skip_drifted IS DISTINCT FROM OLD.revert_skip_drifted THEN
      RAISE EXCEPTION 'run %: what a run reverts is fixed when it is enqueued', OLD.run_id USING ERRCODE = 'CX012';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.revert_of IS NULL THEN
    RETURN NEW;
  END IF;
  SELECT r.mode, r.status, r.target, r.corpus INTO v_of FROM cutter_governance.run r WHERE r.run_id = NEW.revert_of;
  IF NOT FOUND OR v_of.mode <> 'live' OR v_of.status <> 'succeeded'
     OR NOT EXISTS (SELECT 1 FROM cutter_governance.execution_ledger l WHERE l.run_id = NEW.revert_of) THEN
    RAISE EXCEPTION 'run % is not a live run that succeeded: only an applied plan can be reverted', NEW.revert_of
      USING ERRCODE = 'CX012';
  END IF;
  IF v_of.target <> NEW.target OR v_of.corpus <> NEW.corpus THEN
    RAISE EXCEPTION 'run % cuts target % (corpus %): its revert is a run of the same target', NEW.revert_of, v_of.target, v_of.corpus
      USING ERRCODE = 'CX012';
  END IF;
  RETURN NEW;
END
$$;
