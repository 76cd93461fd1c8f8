-- Every write to a corpus table, recorded by the database itself (issue 29):
-- a run's proof that nothing but its own execute wrote its corpus reads the
-- writes committed after its baseline instead of hashing the corpus again,
-- so it costs what the plan costs, not what the corpus costs
-- (docs/proof.md says what it covers and what escapes it).
--
-- corpus_write: one row per statement and corpus, appended by the trigger
-- function record_corpus_write (SECURITY DEFINER: no other role writes it).
-- xact is the writing transaction, assigned by the server; corpus is null
-- when the write's corpus cannot be known (a TRUNCATE, a row of a unit that
-- no longer exists), and such a row counts against every corpus.
CREATE TABLE cutter_governance.corpus_write (
  id      bigserial PRIMARY KEY,
  xact    xid8 NOT NULL DEFAULT pg_current_xact_id(),
  corpus  text,
  tbl     text NOT NULL CHECK (tbl IN ('public.information_unit', 'public.unit_version', 'public.iu_lifecycle_log')),
  op      text NOT NULL CHECK (op IN ('insert', 'update', 'delete', 'truncate')),
  rows    bigint CHECK (rows > 0),
  by_role text NOT NULL DEFAULT session_user,
  at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corpus_write_corpus_xact_idx ON cutter_governance.corpus_write (corpus, xact);

-- A run's baseline mark: the server's snapshot when precheck took the
-- baseline (function mark_run_baseline, once per run). A write whose
-- transaction that snapshot does not see came after the baseline.
CREATE TABLE cutter_governance.run_write_mark (
  run_id   text PRIMARY KEY REFERENCES cutter_governance.run (run_id),
  mark     pg_snapshot NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now()
);

-- The transaction that applied a run's plan (apply_plan): its writes are the
-- run's own; null for runs applied before this migration.
ALTER TABLE cutter_governance.execution_ledger ADD COLUMN xact xid8;
