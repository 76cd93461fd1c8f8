-- Copies the audit events people are told about into the notification
-- outbox (docs/notifications.md), in the transaction that appends them: an
-- event is announced if and only if it committed. The run's state is read
-- here, in that transaction, so a delivery retried later still says what was
-- true when the event happened. The webhook id comes from the audit row's
-- hash, which a restore keeps, so an event put back by a restore and sent
-- again carries the id receivers already saw. The event carries the chain's
-- head, its own row (appends are serialised until commit), so a receiver
-- keeps a head outside the database for `cutter audit verify --head`.
-- SECURITY DEFINER: the application writes the outbox only through this
-- trigger.
CREATE OR REPLACE FUNCTION cutter_governance.announce_audit_event()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type text;
  v_run  record;
  v_plan text;
BEGIN
  IF NEW.run_id IS NULL THEN
    RETURN NULL;
  END IF;
  v_type := CASE NEW.kind
    WHEN 'run.awaiting_approval' THEN 'run.awaiting_approval'
    WHEN 'approval.accepted' THEN 'approval.accepted'
    WHEN 'approval.exec_granted' THEN 'approval.accepted'
    WHEN 'run.verified' THEN CASE WHEN NEW.detail->>'verdict' = 'PASS' THEN 'run.succeeded' ELSE 'run.failed' END
    WHEN 'run.failed' THEN 'run.failed'
    WHEN 'run.lost' THEN 'run.failed'
    WHEN 'run.expired' THEN 'run.expired'
    WHEN 'run.cancelled' THEN 'run.cancelled'
    WHEN 'run.rejected' THEN 'run.rejected'
  END;
  IF v_type IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT r.target, r.mode, r.status, r.phase, r.error_code INTO v_run
    FROM cutter_governance.run r WHERE r.run_id = NEW.run_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT c.plan_sha256 INTO v_plan FROM cutter_governance.cut_change_set c WHERE c.run_id = NEW.run_id;
  INSERT INTO cutter_governance.notification (seq, webhook_id, type, run_id, at, data)
  VALUES (NEW.seq, 'msg_' || left(NEW.hash, 32), v_type, NEW.run_id, NEW.at,
          jsonb_build_object(
            'target', v_run.target, 'mode', v_run.mode, 'status', v_run.status, 'phase', v_run.phase,
            'plan_sha256', v_plan,
            'error_code', coalesce(NEW.detail->>'code', v_run.error_code),
            'reason', NEW.detail->>'reason',
            'gate', NEW.detail->>'gate',
            'key_name', NEW.detail->>'key_name',
            'audit_head', NEW.seq::text || ':' || NEW.hash))
  ON CONFLICT (seq) DO NOTHING;
  PERFORM pg_notify('cutter_notification', NEW.seq::text);
  RETURN NULL;
END
$$;
