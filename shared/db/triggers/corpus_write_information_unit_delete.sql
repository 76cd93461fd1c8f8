-- Every delete from public.information_unit is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_information_unit_delete AFTER DELETE ON public.information_unit
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
