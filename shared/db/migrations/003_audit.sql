-- Append-only, hash-chained audit trail. The chain is computed by a trigger
-- (shared/db/triggers/audit_event_chain.sql), in one place, so every writer
-- (the app, the exec role, psql) links rows the same way.
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
