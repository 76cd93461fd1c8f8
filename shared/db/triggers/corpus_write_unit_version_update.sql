-- Every update of public.unit_version is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_unit_version_update AFTER UPDATE ON public.unit_version
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
