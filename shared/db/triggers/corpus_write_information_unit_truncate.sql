-- A TRUNCATE of public.information_unit is recorded against every corpus (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_information_unit_truncate AFTER TRUNCATE ON public.information_unit
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
