-- The items of a run's plan whose postcondition does not hold in the corpus
-- now (state, version, and the current version's body hash), the first 50 by
-- key: empty when the plan landed exactly. apply_plan asks it when a trigger
-- or rule could have rewritten a row; verify asks it after every live run.
CREATE OR REPLACE FUNCTION cutter_governance.postcondition_failures(p_run_id text)
RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(array_agg(f.key ORDER BY f.key), '{}')
    FROM (SELECT i.key
            FROM cutter_governance.cut_change_item i
            JOIN cutter_governance.cut_change_set c ON c.run_id = i.run_id
            LEFT JOIN public.information_unit u ON u.corpus = c.corpus AND u.key = i.key
            LEFT JOIN public.unit_version v ON v.unit_id = u.id AND v.version = u.current_version
           WHERE i.run_id = p_run_id
             AND (u.id IS NULL OR u.state <> i.post_state OR u.current_version <> i.post_version
                  OR v.body_sha256 IS DISTINCT FROM i.post_body_sha256)
           ORDER BY i.key
           LIMIT 50) f
$$;
