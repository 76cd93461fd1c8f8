-- Replaces migrations 010-019 (shared/db/migration-history.ts): their table,
-- constraint and index changes only; the functions they defined now live in
-- shared/db/functions/.

-- Snapshot staging is a bulk append of one run's rows, written only by
-- discover for a run that exists, from rows the snapshot parser validated
-- and whose keys the staging pass proved unique (shared/snapshot/stage.ts).
-- The foreign key, the CHECKs and the primary key checked nothing again and
-- were paid on every row; a BRIN index finds a run's rows, appended together
-- into block ranges of their own.
ALTER TABLE cutter_governance.snapshot_record
  DROP CONSTRAINT snapshot_record_run_id_fkey,
  DROP CONSTRAINT snapshot_record_body_sha256_check,
  DROP CONSTRAINT snapshot_record_state_check,
  DROP CONSTRAINT snapshot_record_pkey;
CREATE INDEX snapshot_record_run_brin ON cutter_governance.snapshot_record USING brin (run_id);

-- The format CHECKs say the same as before without bounded regex repetitions
-- ({64}, {0,199}): PostgreSQL's regex engine expands each into that many
-- states, and every row paid for it. Each new form accepts exactly the
-- strings the old one did:
--   '^[0-9a-f]{N}$'  = N bytes, none outside [0-9a-f] (so N characters, all ASCII)
--   '^F[R]{m,n}$'    = '^F[R]*$' and m + 1 to n + 1 characters
--   '^[R]{m,n}$'     = '^[R]*$' and m to n characters
-- (test/integration/format-checks.test.ts holds each pair equal). The
-- constraint names stay, so errors read as before.
--
-- The hex rule is written out in each CHECK, not put in one function: a
-- CHECK runs with the inserting role's privileges, and the exec role (which
-- writes execution_ledger) has EXECUTE on no function beyond the grant matrix.

ALTER TABLE public.information_unit
  DROP CONSTRAINT information_unit_corpus_check,
  ADD CONSTRAINT information_unit_corpus_check
    CHECK (corpus ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(corpus) <= 100),
  DROP CONSTRAINT information_unit_key_check,
  ADD CONSTRAINT information_unit_key_check
    CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' AND char_length(key) <= 200);

ALTER TABLE cutter_governance.target_registry
  DROP CONSTRAINT target_registry_corpus_check,
  ADD CONSTRAINT target_registry_corpus_check
    CHECK (corpus ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(corpus) <= 100),
  DROP CONSTRAINT target_registry_name_check,
  ADD CONSTRAINT target_registry_name_check
    CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$' AND char_length(name) <= 64);

ALTER TABLE cutter_governance.run
  DROP CONSTRAINT run_run_id_check,
  ADD CONSTRAINT run_run_id_check
    CHECK (run_id ~ '^[A-Za-z0-9_-]*$' AND char_length(run_id) BETWEEN 8 AND 64),
  DROP CONSTRAINT run_snapshot_sha256_check,
  ADD CONSTRAINT run_snapshot_sha256_check
    CHECK (octet_length(snapshot_sha256) = 64 AND snapshot_sha256 !~ '[^0-9a-f]');

ALTER TABLE cutter_governance.cut_change_set
  DROP CONSTRAINT cut_change_set_plan_sha256_check,
  ADD CONSTRAINT cut_change_set_plan_sha256_check
    CHECK (octet_length(plan_sha256) = 64 AND plan_sha256 !~ '[^0-9a-f]');

ALTER TABLE cutter_governance.cut_change_item
  DROP CONSTRAINT cut_change_item_pre_body_sha256_check,
  ADD CONSTRAINT cut_change_item_pre_body_sha256_check
    CHECK (octet_length(pre_body_sha256) = 64 AND pre_body_sha256 !~ '[^0-9a-f]'),
  DROP CONSTRAINT cut_change_item_post_body_sha256_check,
  ADD CONSTRAINT cut_change_item_post_body_sha256_check
    CHECK (octet_length(post_body_sha256) = 64 AND post_body_sha256 !~ '[^0-9a-f]');

ALTER TABLE cutter_governance.review_decision
  DROP CONSTRAINT review_decision_key_id_check,
  ADD CONSTRAINT review_decision_key_id_check
    CHECK (octet_length(key_id) = 16 AND key_id !~ '[^0-9a-f]'),
  DROP CONSTRAINT review_decision_nonce_check,
  ADD CONSTRAINT review_decision_nonce_check
    CHECK (octet_length(nonce) = 32 AND nonce !~ '[^0-9a-f]'),
  DROP CONSTRAINT review_decision_plan_sha256_check,
  ADD CONSTRAINT review_decision_plan_sha256_check
    CHECK (octet_length(plan_sha256) = 64 AND plan_sha256 !~ '[^0-9a-f]');

ALTER TABLE cutter_governance.execution_ledger
  DROP CONSTRAINT execution_ledger_plan_sha256_check,
  ADD CONSTRAINT execution_ledger_plan_sha256_check
    CHECK (octet_length(plan_sha256) = 64 AND plan_sha256 !~ '[^0-9a-f]');

ALTER TABLE cutter_governance.audit_event
  DROP CONSTRAINT audit_event_prev_hash_check,
  ADD CONSTRAINT audit_event_prev_hash_check
    CHECK (octet_length(prev_hash) = 64 AND prev_hash !~ '[^0-9a-f]'),
  DROP CONSTRAINT audit_event_hash_check,
  ADD CONSTRAINT audit_event_hash_check
    CHECK (octet_length(hash) = 64 AND hash !~ '[^0-9a-f]');

-- Whether a run's gate already opened is read from its gate.released audit
-- row, the one thing that tells a twin delivery of the gate from approvals
-- consumed by some other hand. The chain only grows; a partial index keeps
-- one entry per opened gate instead of a scan of the whole chain.
CREATE INDEX audit_event_gate_released ON cutter_governance.audit_event (run_id) WHERE kind = 'gate.released';
