-- The execution ledger stands alone: it is the record of every plan ever
-- applied, and must outlive the change set it names. An in-place restore
-- (`cutter backup restore FILE --into URL --force`) puts the governance
-- tables back as the backup held them, then re-inserts the ledger rows the
-- backup lacks (shared/backup/reassert.ts): a run whose backup predates it
-- has no change set in the restored database, and this foreign key refused
-- exactly those rows, so a restored database forgot plans it had applied.
-- Nothing relied on the key: execute writes its ledger row in the very
-- transaction that reads the change set it applies (shared/execute/).
ALTER TABLE cutter_governance.execution_ledger DROP CONSTRAINT execution_ledger_run_id_fkey;
