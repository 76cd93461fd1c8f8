-- A revert (`cutter revert RUN_ID`, docs/undo.md) is a run whose input is
-- computed from the run it reverts rather than read from a snapshot file:
-- revert_of names that run (a live run that succeeded: trigger run_revert_of
-- checks it on INSERT and keeps both columns as they are afterwards), and
-- revert_skip_drifted says whether units changed since that run are left
-- out (--skip-drifted) instead of refusing the revert.
ALTER TABLE cutter_governance.run
  ADD COLUMN revert_of text REFERENCES cutter_governance.run (run_id),
  ADD COLUMN revert_skip_drifted boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT run_revert_input_check CHECK (
    CASE WHEN revert_of IS NULL THEN NOT revert_skip_drifted
         ELSE snapshot_path IS NULL AND snapshot_sha256 IS NULL AND revert_of <> run_id END);
CREATE INDEX run_revert_of_idx ON cutter_governance.run (revert_of) WHERE revert_of IS NOT NULL;

-- A revert's plan may take the inverse of a transition the reverted run made
-- (enacted->draft for a unit it enacted, retired->draft and retired->enacted
-- for one it retired), and only a revert's: the trigger cut_change_item_revert
-- refuses them in any other run's items, and apply_plan again before it writes.
ALTER TABLE cutter_governance.cut_change_item
  DROP CONSTRAINT cut_change_item_transition_check,
  ADD CONSTRAINT cut_change_item_transition_check CHECK (transition IN (
    'new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired',
    'enacted->draft', 'retired->draft', 'retired->enacted'));

-- The units a revert left out with --skip-drifted (each changed after the
-- reverted run), and the run that changed it last (null: no run recorded the
-- change). Written by discover with the staged input; the plan lists them.
CREATE TABLE cutter_governance.revert_skip (
  run_id         text NOT NULL REFERENCES cutter_governance.run (run_id),
  key            text NOT NULL,
  changed_by_run text,
  PRIMARY KEY (run_id, key)
);
