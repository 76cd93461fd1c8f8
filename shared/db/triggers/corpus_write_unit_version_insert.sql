-- Every insert into public.unit_version is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_unit_version_insert AFTER INSERT ON public.unit_version
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
