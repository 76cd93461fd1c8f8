-- Every delete from public.iu_lifecycle_log is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_iu_lifecycle_log_delete AFTER DELETE ON public.iu_lifecycle_log
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
