-- Every insert into public.iu_lifecycle_log is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_iu_lifecycle_log_insert AFTER INSERT ON public.iu_lifecycle_log
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
