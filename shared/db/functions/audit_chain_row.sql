-- Links each new audit row to its predecessor (trigger audit_event_chain):
-- the chain is computed here, in one place, whoever inserts.
CREATE OR REPLACE FUNCTION cutter_governance.audit_chain_row()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  last_seq  bigint;
  last_hash text;
BEGIN
  -- Serialise appends so two writers never link to the same predecessor.
  PERFORM pg_advisory_xact_lock(hashtext('cutter_governance.audit_event')::bigint);
  SELECT e.seq, e.hash INTO last_seq, last_hash
    FROM cutter_governance.audit_event e ORDER BY e.seq DESC LIMIT 1;
  NEW.seq := coalesce(last_seq, 0) + 1;
  NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
  NEW.at := date_trunc('microseconds', clock_timestamp());
  NEW.detail := coalesce(NEW.detail, '{}'::jsonb);
  NEW.hash := encode(sha256(convert_to(cutter_governance.audit_canonical(
    NEW.seq, NEW.at, NEW.actor, NEW.kind, NEW.run_id, NEW.detail, NEW.prev_hash), 'UTF8')), 'hex');
  RETURN NEW;
END
$$;
