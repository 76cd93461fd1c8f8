-- Append-only, hash-chained audit trail. The chain is computed here, in one
-- place, so every writer (the app, the exec role, psql) links rows the same way.
CREATE TABLE cutter_governance.audit_event (
  seq       bigint PRIMARY KEY,
  at        timestamptz NOT NULL,
  actor     text NOT NULL,
  kind      text NOT NULL,
  run_id    text,
  detail    jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash      text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);

-- The canonical text a row's hash covers. `cutter audit verify` recomputes it
-- with its own copy of this expression rather than trusting this function.
CREATE FUNCTION cutter_governance.audit_canonical(
  p_seq bigint, p_at timestamptz, p_actor text, p_kind text, p_run_id text, p_detail jsonb, p_prev_hash text
) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT concat_ws('|', p_seq::text, to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   p_actor, p_kind, coalesce(p_run_id, ''), p_detail::text, p_prev_hash)
$$;

CREATE FUNCTION cutter_governance.audit_chain_row()
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

CREATE FUNCTION cutter_governance.audit_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_event_chain BEFORE INSERT ON cutter_governance.audit_event
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.audit_chain_row();
CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON cutter_governance.audit_event
  FOR EACH ROW EXECUTE FUNCTION cutter_governance.audit_refuse_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON cutter_governance.audit_event
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.audit_refuse_change();
