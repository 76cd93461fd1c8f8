-- Every update of public.information_unit is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_information_unit_update AFTER UPDATE ON public.information_unit
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
