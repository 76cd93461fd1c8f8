-- Who enqueued a run, as the database knows it (DESIGN §3, no self-approval):
-- the login of the session that inserted the run row. The operator label
-- (CUTTER_OPERATOR) is whatever the operator typed; this column is not: the
-- trigger run_enqueued_by (shared/db/triggers/) sets it to session_user on
-- INSERT whatever the client sends, and keeps it on UPDATE.
ALTER TABLE cutter_governance.run ADD COLUMN enqueued_by text;

-- Runs enqueued before this migration: their login was never recorded, and
-- the operator label is the identity the rule compared until now.
UPDATE cutter_governance.run SET enqueued_by = operator;

ALTER TABLE cutter_governance.run
  ALTER COLUMN enqueued_by SET DEFAULT session_user,
  ALTER COLUMN enqueued_by SET NOT NULL;
