-- Every insert into public.information_unit is recorded (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_information_unit_insert AFTER INSERT ON public.information_unit
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
