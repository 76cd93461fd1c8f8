-- Applies a run's frozen plan: the one way the corpus is written
-- (shared/execute/execution.ts calls it as the exec role, which holds no
-- write grant on any table). SECURITY DEFINER, so PostgreSQL itself holds the
-- line for every caller, ours or not:
--  * only a run that is running at its execute phase, after a backup of it
--    was taken and verified (its backup phase completed with verified true
--    and the file's sha256: the backup result of shared/jobs/results.ts),
--    and only its own plan items;
--  * a live run only while the kill switch is on for exactly that run, and
--    only once: the ledger row, the change set marked applied, the switch
--    turned off for the run and the execute.applied audit row commit with
--    the change, and a second call finds the ledger row;
--  * a dry run is rehearsed and never kept: the function raises CX000 with
--    what it would have written (DETAIL, JSON), which undoes everything it did.
--
-- One statement checks every precondition under the row lock, applies, and
-- returns what proves every postcondition:
--  * each existing unit is changed by an UPDATE whose WHERE is the item's
--    precondition (same id, key, state, version, and that version's body
--    hash); UPDATE takes the row lock, and a row another transaction changed
--    first is re-read under the lock and the WHERE re-evaluated on it (READ
--    COMMITTED's EvalPlanQual), so every row written was checked while locked
--    and a drifted row is not written at all. A unit to create must not
--    exist: ON CONFLICT DO NOTHING skips it. A skipped item is a drifted one.
--  * (corpus, key) and the items' (run_id, key) are unique, so each item
--    writes at most one unit and each unit at most one item: "every item
--    applied" is created + updated = the plan's item count. RETURNING gives
--    the stored rows, so a trigger that changed one shows; with any trigger
--    or rule on the corpus tables the full postcondition join runs as well
--    (but the corpus_write_* triggers, which only record that a write happened).
--
-- Errors (SQLSTATE): CX001 the run is not running at execute; CX007 no
-- verified backup of the run; CX002 already
-- applied (the ledger has it); CX003 kill switch off for this run; CX004
-- drift (DETAIL: the keys); CX005 a postcondition does not hold (DETAIL: the
-- keys); CX006 the items changed under the statement; CX008 a transition only
-- a revert may take (enacted->draft, retired->draft, retired->enacted) in the
-- plan of a run that is no revert (trigger cut_change_item_revert refuses such
-- items when they are inserted; this holds it for any written since); CX000
-- dry run rehearsed.
CREATE OR REPLACE FUNCTION cutter_governance.apply_plan(p_run_id text, p_actor text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_run    record;
  v_plan   record;
  v_items  integer;
  v_undo   integer;
  v_out    record;
  v_counts jsonb;
  v_failed text[];
BEGIN
  SELECT r.mode, r.status, r.phase, r.corpus, r.revert_of INTO v_run FROM cutter_governance.run r WHERE r.run_id = p_run_id FOR SHARE;
  IF NOT FOUND OR v_run.status <> 'running' OR v_run.phase IS DISTINCT FROM 'execute' THEN
    RAISE EXCEPTION 'run % is not running at execute (%, %)', p_run_id, coalesce(v_run.status, 'unknown'), coalesce(v_run.phase, '-')
      USING ERRCODE = 'CX001';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM cutter_governance.run_phase b
                  WHERE b.run_id = p_run_id AND b.phase = 'backup' AND b.state = 'completed'
                    AND b.summary ->> 'verified' = 'true' AND octet_length(b.summary ->> 'sha256') = 64) THEN
    RAISE EXCEPTION 'run % has no completed, verified backup', p_run_id USING ERRCODE = 'CX007';
  END IF;
  IF EXISTS (SELECT 1 FROM cutter_governance.execution_ledger l WHERE l.run_id = p_run_id) THEN
    RAISE EXCEPTION 'run % was already applied (execution_ledger)', p_run_id USING ERRCODE = 'CX002';
  END IF;
  IF v_run.mode = 'live' AND NOT cutter_governance.execution_enabled(p_run_id) THEN
    RAISE EXCEPTION 'the kill switch is off for run %', p_run_id USING ERRCODE = 'CX003';
  END IF;
  SELECT c.plan_sha256, c.corpus INTO v_plan FROM cutter_governance.cut_change_set c WHERE c.run_id = p_run_id;
  IF NOT FOUND OR v_plan.corpus <> v_run.corpus THEN
    RAISE EXCEPTION 'run % has no change set for its corpus', p_run_id USING ERRCODE = 'CX001';
  END IF;
  SELECT count(*)::int, count(*) FILTER (WHERE i.transition IN ('enacted->draft', 'retired->draft', 'retired->enacted'))::int
    INTO v_items, v_undo
    FROM cutter_governance.cut_change_item i WHERE i.run_id = p_run_id;
  IF v_undo > 0 AND v_run.revert_of IS NULL THEN
    RAISE EXCEPTION 'run % is no revert, but its plan takes a transition only a revert may take', p_run_id USING ERRCODE = 'CX008';
  END IF;

  WITH created AS (
    INSERT INTO public.information_unit (corpus, key, state, current_version)
    SELECT v_run.corpus, i.key, i.post_state, i.post_version
      FROM cutter_governance.cut_change_item i
     WHERE i.run_id = p_run_id AND i.op = 'create'
        ON CONFLICT (corpus, key) DO NOTHING
    RETURNING id, key, state, current_version
  ), updated AS (
    UPDATE public.information_unit u
       SET state = i.post_state, current_version = i.post_version, updated_at = now()
      FROM cutter_governance.cut_change_item i
      LEFT JOIN public.unit_version v ON v.unit_id = i.unit_id AND v.version = i.pre_version
     WHERE i.run_id = p_run_id AND i.op <> 'create'
       AND u.id = i.unit_id AND u.corpus = v_run.corpus AND u.key = i.key
       AND u.state = i.pre_state AND u.current_version = i.pre_version
       AND v.body_sha256 IS NOT DISTINCT FROM i.pre_body_sha256
    RETURNING u.id, u.key, u.state, u.current_version, i.pre_state, i.pre_version, i.pre_body_sha256,
              i.post_state, i.post_version, i.post_body, i.post_body_sha256
  ), applied AS (
    SELECT c.id, c.key, c.state, c.current_version, NULL::text AS pre_state, NULL::integer AS pre_version,
           NULL::text AS pre_body_sha256, i.post_state, i.post_version, i.post_body, i.post_body_sha256
      FROM created c
      JOIN cutter_governance.cut_change_item i ON i.run_id = p_run_id AND i.op = 'create' AND i.key = c.key
    UNION ALL
    SELECT id, key, state, current_version, pre_state, pre_version, pre_body_sha256,
           post_state, post_version, post_body, post_body_sha256
      FROM updated
  ), versions AS (
    INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
    SELECT id, post_version, post_body, post_body_sha256, p_run_id FROM applied WHERE post_body IS NOT NULL
    RETURNING 1
  ), logged AS (
    INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor)
    SELECT id, pre_state, post_state, post_version, p_run_id, p_actor FROM applied
    RETURNING 1
  ), unproven AS (
    SELECT key FROM applied
     WHERE state IS DISTINCT FROM post_state OR current_version IS DISTINCT FROM post_version
        OR (post_body IS NULL AND (pre_version IS DISTINCT FROM post_version
                                   OR pre_body_sha256 IS DISTINCT FROM post_body_sha256))
  ), tally AS (
    SELECT count(*)::int AS applied, count(*) FILTER (WHERE post_body IS NOT NULL)::int AS bodies FROM applied
  )
  SELECT (SELECT count(*)::int FROM created) AS units_created,
         (SELECT count(*)::int FROM updated) AS units_updated,
         (SELECT count(*)::int FROM versions) AS versions_written,
         (SELECT count(*)::int FROM logged) AS log_rows,
         t.applied, t.bodies,
         ARRAY(SELECT key FROM unproven ORDER BY key COLLATE "C" LIMIT 50) AS unproven,
         -- Only on drift: the items the statement skipped (an anti-join the success path never runs).
         CASE WHEN t.applied <> v_items THEN ARRAY(
           SELECT i.key FROM cutter_governance.cut_change_item i
            WHERE i.run_id = p_run_id AND NOT EXISTS (SELECT 1 FROM applied a WHERE a.key = i.key)
            ORDER BY i.key COLLATE "C" LIMIT 50) END AS skipped
    INTO v_out
    FROM tally t;

  IF v_out.applied < v_items AND cardinality(v_out.skipped) > 0 THEN
    RAISE EXCEPTION 'the corpus changed since the plan was made' USING ERRCODE = 'CX004', DETAIL = array_to_string(v_out.skipped, ', ');
  END IF;
  IF v_out.applied <> v_items THEN
    RAISE EXCEPTION 'the plan has % items but % were applied', v_items, v_out.applied USING ERRCODE = 'CX006';
  END IF;
  v_failed := v_out.unproven;
  IF cardinality(v_failed) = 0 AND (v_out.versions_written <> v_out.bodies OR v_out.log_rows <> v_out.applied) THEN
    v_failed := ARRAY['(version or log rows missing)'];
  END IF;
  -- Anything that could rewrite a row after the statement: then prove every item the long way.
  IF cardinality(v_failed) = 0 AND (
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE NOT tgisinternal
                AND tgfoid <> 'cutter_governance.record_corpus_write()'::regprocedure
                AND tgrelid IN ('public.information_unit'::regclass, 'public.unit_version'::regclass, 'public.iu_lifecycle_log'::regclass))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite
                   WHERE ev_class IN ('public.information_unit'::regclass, 'public.unit_version'::regclass, 'public.iu_lifecycle_log'::regclass))) THEN
    v_failed := cutter_governance.postcondition_failures(p_run_id);
  END IF;
  IF cardinality(v_failed) > 0 THEN
    RAISE EXCEPTION 'postconditions failed' USING ERRCODE = 'CX005', DETAIL = array_to_string(v_failed, ', ');
  END IF;

  v_counts := jsonb_build_object('units_created', v_out.units_created, 'units_updated', v_out.units_updated,
                                 'versions_written', v_out.versions_written, 'log_rows', v_out.log_rows);
  IF v_run.mode <> 'live' THEN
    RAISE EXCEPTION 'run % rehearsed and rolled back', p_run_id USING ERRCODE = 'CX000', DETAIL = v_counts::text;
  END IF;
  -- xact: this transaction, whose writes verify counts as the run's own (corpus_write).
  INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count, xact)
  VALUES (p_run_id, v_plan.plan_sha256, v_items, pg_current_xact_id());
  UPDATE cutter_governance.cut_change_set SET status = 'applied', applied_at = now() WHERE run_id = p_run_id;
  PERFORM cutter_governance.disarm_execution(p_run_id, p_actor);
  INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
  VALUES (0, now(), p_actor, 'execute.applied', p_run_id, v_counts || jsonb_build_object('plan_sha256', v_plan.plan_sha256),
          repeat('0', 64), repeat('0', 64));
  RETURN v_counts;
END
$$;
