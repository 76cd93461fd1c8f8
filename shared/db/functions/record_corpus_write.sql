-- Appends one corpus_write row per corpus a statement wrote (triggers
-- corpus_write_*, AFTER … FOR EACH STATEMENT, so a statement of a million rows
-- costs one pass over its transition table, not a million calls). A unit's
-- versions and log rows count in the unit's corpus; an update counts in every
-- corpus its rows were in before or after. SECURITY DEFINER: the roles that
-- write the corpus cannot write the record of it.
CREATE OR REPLACE FUNCTION cutter_governance.record_corpus_write()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_table text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
  v_op    text := lower(TG_OP);
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows) VALUES (NULL, v_table, v_op, NULL);
  ELSIF TG_TABLE_NAME = 'information_unit' THEN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows)
      SELECT n.corpus, v_table, v_op, count(*) FROM new_rows n GROUP BY n.corpus;
    ELSIF TG_OP = 'DELETE' THEN
      INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows)
      SELECT o.corpus, v_table, v_op, count(*) FROM old_rows o GROUP BY o.corpus;
    ELSE
      INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows)
      SELECT x.corpus, v_table, v_op, max(x.n) FROM (
        SELECT o.corpus, count(*) AS n FROM old_rows o GROUP BY o.corpus
        UNION ALL
        SELECT n.corpus, count(*) FROM new_rows n GROUP BY n.corpus) x
      GROUP BY x.corpus;
    END IF;
  ELSE
    -- unit_version, iu_lifecycle_log: the corpus of the row's unit (null if it is gone).
    IF TG_OP = 'INSERT' THEN
      INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows)
      SELECT u.corpus, v_table, v_op, count(*) FROM new_rows n LEFT JOIN public.information_unit u ON u.id = n.unit_id GROUP BY u.corpus;
    ELSIF TG_OP = 'DELETE' THEN
      INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows)
      SELECT u.corpus, v_table, v_op, count(*) FROM old_rows o LEFT JOIN public.information_unit u ON u.id = o.unit_id GROUP BY u.corpus;
    ELSE
      INSERT INTO cutter_governance.corpus_write (corpus, tbl, op, rows)
      SELECT x.corpus, v_table, v_op, max(x.n) FROM (
        SELECT u.corpus, count(*) AS n FROM old_rows o LEFT JOIN public.information_unit u ON u.id = o.unit_id GROUP BY u.corpus
        UNION ALL
        SELECT u.corpus, count(*) FROM new_rows n LEFT JOIN public.information_unit u ON u.id = n.unit_id GROUP BY u.corpus) x
      GROUP BY x.corpus;
    END IF;
  END IF;
  RETURN NULL;
END
$$;
