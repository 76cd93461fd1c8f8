-- A TRUNCATE of public.iu_lifecycle_log is recorded against every corpus (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_iu_lifecycle_log_truncate AFTER TRUNCATE ON public.iu_lifecycle_log
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
