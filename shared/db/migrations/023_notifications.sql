-- Notifications (docs/notifications.md): an outbox of the run events people
-- are told about, filled by the trigger audit_event_notify in the same
-- transaction as the audit row (so an event is announced exactly when it
-- happened), and one delivery row per (event, endpoint) that the notify
-- worker keeps up to date for the run page.

CREATE TABLE cutter_governance.notification (
  seq           bigint PRIMARY KEY,             -- the audit_event it announces
  webhook_id    text NOT NULL UNIQUE CHECK (webhook_id ~ '^msg_[0-9a-f]{32}$'),
  type          text NOT NULL,
  run_id        text NOT NULL,
  at            timestamptz NOT NULL,
  data          jsonb NOT NULL
);
CREATE INDEX notification_at_idx ON cutter_governance.notification (at);
CREATE INDEX notification_run_idx ON cutter_governance.notification (run_id);

-- An endpoint is named by the first 16 hex of the sha256 of its URL: the URL
-- itself (a chat tool's incoming webhook carries its secret in the path)
-- never reaches the database, Redis or a page; label is its origin. An
-- endpoint is sent the events from when it was first configured on.
CREATE TABLE cutter_governance.webhook_endpoint (
  endpoint_id     text PRIMARY KEY CHECK (endpoint_id ~ '^[0-9a-f]{16}$'),
  label           text NOT NULL,
  registered_at   timestamptz NOT NULL DEFAULT now(),
  disabled_at     timestamptz,
  disabled_reason text
);

CREATE TABLE cutter_governance.notification_delivery (
  seq             bigint NOT NULL REFERENCES cutter_governance.notification (seq),
  endpoint_id     text NOT NULL REFERENCES cutter_governance.webhook_endpoint (endpoint_id),
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'disabled')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_status     integer,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  next_attempt_at timestamptz,
  delivered_at    timestamptz,
  PRIMARY KEY (seq, endpoint_id)
);
CREATE INDEX notification_delivery_pending_idx ON cutter_governance.notification_delivery (updated_at) WHERE state = 'pending';
