-- The canonical text an audit row's hash covers. `cutter audit verify`
-- recomputes it with its own copy of this expression rather than trusting
-- this function.
CREATE OR REPLACE FUNCTION cutter_governance.audit_canonical(
  p_seq bigint, p_at timestamptz, p_actor text, p_kind text, p_run_id text, p_detail jsonb, p_prev_hash text
) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT concat_ws('|', p_seq::text, to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   p_actor, p_kind, coalesce(p_run_id, ''), p_detail::text, p_prev_hash)
$$;
