-- A revert's items are the inverse of the reverted run's, and only a revert takes a revert's transitions (function check_revert_items).
CREATE OR REPLACE TRIGGER cut_change_item_revert AFTER INSERT ON cutter_governance.cut_change_item
  REFERENCING NEW TABLE AS new_items
  FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.check_revert_items();
