-- A revert's plan is the inverse of what the run it reverts applied, unit by
-- unit, and nothing else: each item names a unit that run changed, finds it
-- exactly as that run left it (state, version, body hash), takes the inverse
-- of that run's transition, and leaves the unit in the state and with the
-- body it had before (a unit that run created: retired, its body as it is).
-- No other run's plan takes a transition only a revert may take
-- (enacted->draft, retired->draft, retired->enacted). Checked once per INSERT
-- statement over the rows it added (trigger cut_change_item_revert; cutplan
-- inserts a plan's items in one statement), so a plan pays one pass.
-- Errors: CX010 a transition only a revert may take, in a plan that is no
-- revert's; CX011 a revert's item that is not the inverse of the reverted
-- run's item for its key.
CREATE OR REPLACE FUNCTION cutter_governance.check_revert_items()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_run record;
  v_bad record;
BEGIN
  FOR v_run IN SELECT r.run_id, r.revert_of FROM cutter_governance.run r
                WHERE r.run_id IN (SELECT DISTINCT n.run_id FROM new_items n) LOOP
    IF v_run.revert_of IS NULL THEN
      SELECT n.key, n.transition INTO v_bad FROM new_items n
       WHERE n.run_id = v_run.run_id AND n.transition IN ('enacted->draft', 'retired->draft', 'retired->enacted')
       LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'run % is no revert: its plan may not take % (unit %)', v_run.run_id, v_bad.transition, v_bad.key
          USING ERRCODE = 'CX010';
      END IF;
    ELSE
      SELECT n.key INTO v_bad FROM new_items n
        LEFT JOIN cutter_governance.cut_change_item o ON o.run_id = v_run.revert_of AND o.key = n.key
       WHERE n.run_id = v_run.run_id
         AND (o.key IS NULL OR n.op = 'create'
              OR n.transition IS DISTINCT FROM cutter_governance.inverse_transition(o.transition)
              OR n.pre_state IS DISTINCT FROM o.post_state OR n.pre_version IS DISTINCT FROM o.post_version
              OR n.pre_body_sha256 IS DISTINCT FROM o.post_body_sha256
              OR n.post_state IS DISTINCT FROM coalesce(o.pre_state, 'retired')
              OR n.post_body_sha256 IS DISTINCT FROM coalesce(o.pre_body_sha256, o.post_body_sha256))
       LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'run % reverts run %, but its item for % is not the inverse of that run''s', v_run.run_id, v_run.revert_of, v_bad.key
          USING ERRCODE = 'CX011';
      END IF;
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;
