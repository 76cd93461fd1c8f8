-- A TRUNCATE of public.unit_version is recorded against every corpus (function record_corpus_write).
CREATE OR REPLACE TRIGGER corpus_write_unit_version_truncate AFTER TRUNCATE ON public.unit_version
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.record_corpus_write();
