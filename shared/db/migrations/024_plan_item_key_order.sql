-- Plan review (docs/plan-review.md) pages a run's items by key in byte
-- order (keyset: key COLLATE "C" > the last key seen). The primary key's
-- index is in the database's collation, which need not be byte order, so
-- without this index every page of a million-item plan sorted all of it.
CREATE INDEX cut_change_item_key_bytes ON cutter_governance.cut_change_item (run_id, key COLLATE "C");
