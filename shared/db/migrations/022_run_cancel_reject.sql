-- A run can be said no to (issue 25): `cutter cancel` ends it `cancelled`,
-- a signed rejection (gate REJECT) ends it `rejected`. The rejection is a
-- review_decision like any approval, and keeps the reason it was signed with
-- (the document's `allowance: reason=...` line); only a rejection has one.
ALTER TABLE cutter_governance.run DROP CONSTRAINT run_status_check;
ALTER TABLE cutter_governance.run ADD CONSTRAINT run_status_check
  CHECK (status IN ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'expired', 'cancelled', 'rejected'));

ALTER TABLE cutter_governance.review_decision DROP CONSTRAINT review_decision_gate_check;
ALTER TABLE cutter_governance.review_decision ADD CONSTRAINT review_decision_gate_check
  CHECK (gate IN ('SG_1', 'EXEC', 'REJECT'));

ALTER TABLE cutter_governance.review_decision ADD COLUMN reason text;
ALTER TABLE cutter_governance.review_decision ADD CONSTRAINT review_decision_reason_check
  CHECK ((gate = 'REJECT') = (reason IS NOT NULL) AND (reason IS NULL OR reason ~ '^[ -~]{1,200}$'));
