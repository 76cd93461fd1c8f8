-- The one SQL list of in-flight run statuses (a run that may still change).
-- The TypeScript list is IN_FLIGHT_STATUSES; a test holds them equal.
-- No SET clause, so callers' queries inline it.
CREATE OR REPLACE FUNCTION cutter_governance.run_in_flight(p_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
  SELECT p_status IN ('queued', 'running', 'awaiting_approval')
$$;
