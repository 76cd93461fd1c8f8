-- Whether a run's gate already opened is read from its gate.released audit
-- row (shared/approval/gate.ts, alreadyOpened): only that row tells a twin
-- delivery of the gate from approvals consumed by some other hand. The audit
-- chain is append-only and only grows, and its one index was on seq, so
-- every gate that stayed shut and every redelivery read the whole chain. A
-- partial index keeps one entry per opened gate; other appends only test its
-- predicate.
CREATE INDEX audit_event_gate_released ON cutter_governance.audit_event (run_id) WHERE kind = 'gate.released';
