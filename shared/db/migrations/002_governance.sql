-- Governance records (DESIGN §2): targets, runs, plans, approvals, results.
CREATE SCHEMA IF NOT EXISTS cutter_governance;

CREATE TABLE cutter_governance.target_registry (
  name                text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  corpus              text NOT NULL CHECK (corpus ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  owner               text NOT NULL CHECK (length(owner) BETWEEN 1 AND 200),
  protected           boolean NOT NULL,
  max_units           integer NOT NULL CHECK (max_units >= 1),
  allowed_transitions text[] NOT NULL CHECK (
    allowed_transitions <@ ARRAY['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired', 'revise']::text[]
  ),
  allow_empty_corpus  boolean NOT NULL DEFAULT false,
  registered_by       text NOT NULL,
  registered_utc      timestamptz NOT NULL DEFAULT now(),
  notes               text NOT NULL DEFAULT ''
);

CREATE TABLE cutter_governance.run (
  run_id            text PRIMARY KEY CHECK (run_id ~ '^[A-Za-z0-9_-]{8,64}$'),
  target            text NOT NULL REFERENCES cutter_governance.target_registry (name),
  corpus            text NOT NULL,
  mode              text NOT NULL CHECK (mode IN ('dry', 'live')),
  status            text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'expired')),
  phase             text,
  failed_phase      text,
  error_code        text,
  error_message     text,
  operator          text NOT NULL,
  snapshot_path     text,
  snapshot_sha256   text CHECK (snapshot_sha256 ~ '^[0-9a-f]{64}$'),
  idempotency_key   text UNIQUE,
  approval_window_s integer NOT NULL DEFAULT 259200 CHECK (approval_window_s BETWEEN 1 AND 259200),
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  baseline          jsonb,
  verdict           text CHECK (verdict IN ('PASS', 'FAIL')),
  report            text
);
CREATE INDEX run_status_idx ON cutter_governance.run (status, created_at DESC);

-- One row per phase a run went through, for timelines and "which phase failed".
CREATE TABLE cutter_governance.run_phase (
  run_id      text NOT NULL REFERENCES cutter_governance.run (run_id),
  phase       text NOT NULL,
  state       text NOT NULL CHECK (state IN ('active', 'completed', 'failed', 'skipped')),
  attempts    integer NOT NULL DEFAULT 1,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  summary     jsonb NOT NULL DEFAULT '{}'::jsonb,
  error_code  text,
  error       text,
  PRIMARY KEY (run_id, phase)
);

-- C4: at most one active run holds a corpus.
CREATE TABLE cutter_governance.corpus_lock (
  corpus      text PRIMARY KEY,
  run_id      text NOT NULL UNIQUE REFERENCES cutter_governance.run (run_id),
  acquired_at timestamptz NOT NULL DEFAULT now()
);

-- The validated snapshot of a run, staged by discover (bulk data stays in Postgres).
CREATE TABLE cutter_governance.snapshot_record (
  run_id      text NOT NULL REFERENCES cutter_governance.run (run_id),
  key         text NOT NULL,
  state       text NOT NULL CHECK (state IN ('draft', 'enacted', 'retired')),
  body        text NOT NULL,
  body_sha256 text NOT NULL CHECK (body_sha256 ~ '^[0-9a-f]{64}$'),
  line_no     integer NOT NULL,
  PRIMARY KEY (run_id, key)
);

CREATE TABLE cutter_governance.cut_change_set (
  run_id        text PRIMARY KEY REFERENCES cutter_governance.run (run_id), -- one per run
  target        text NOT NULL,
  corpus        text NOT NULL,
  plan_sha256   text NOT NULL CHECK (plan_sha256 ~ '^[0-9a-f]{64}$'),
  unit_count    integer NOT NULL CHECK (unit_count >= 0),
  by_op         jsonb NOT NULL,
  by_transition jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'rehearsed', 'applied', 'failed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  applied_at    timestamptz
);

CREATE TABLE cutter_governance.cut_change_item (
  run_id           text NOT NULL REFERENCES cutter_governance.cut_change_set (run_id),
  key              text NOT NULL,
  op               text NOT NULL CHECK (op IN ('create', 'revise', 'transition', 'revise+transition')),
  transition       text CHECK (transition IN ('new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired')),
  unit_id          bigint,
  pre_state        text CHECK (pre_state IN ('draft', 'enacted', 'retired')),
  pre_version      integer,
  pre_body_sha256  text CHECK (pre_body_sha256 ~ '^[0-9a-f]{64}$'),
  post_state       text NOT NULL CHECK (post_state IN ('draft', 'enacted', 'retired')),
  post_version     integer NOT NULL CHECK (post_version >= 1),
  post_body_sha256 text NOT NULL CHECK (post_body_sha256 ~ '^[0-9a-f]{64}$'),
  post_body        text,
  PRIMARY KEY (run_id, key)
);

CREATE TABLE cutter_governance.review_decision (
  id           bigserial PRIMARY KEY,
  run_id       text NOT NULL REFERENCES cutter_governance.run (run_id),
  gate         text NOT NULL CHECK (gate IN ('SG_1', 'EXEC')),
  key_id       text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
  key_name     text NOT NULL,
  document     text NOT NULL,
  signature    text NOT NULL,
  nonce        text NOT NULL CHECK (nonce ~ '^[0-9a-f]{32}$'),
  plan_sha256  text CHECK (plan_sha256 ~ '^[0-9a-f]{64}$'),
  signed_utc   timestamptz NOT NULL,
  expires_utc  timestamptz NOT NULL,
  received_utc timestamptz NOT NULL DEFAULT now(),
  consumed_utc timestamptz,
  CONSTRAINT review_decision_nonce_unique UNIQUE (nonce),
  CONSTRAINT review_decision_one_per_key UNIQUE (run_id, gate, key_id)
);

CREATE TABLE cutter_governance.verify_result (
  run_id      text PRIMARY KEY REFERENCES cutter_governance.run (run_id),
  passed      boolean NOT NULL,
  checks      jsonb NOT NULL, -- [{name, expected, actual, passed}]
  verified_at timestamptz NOT NULL DEFAULT now()
);

-- The kill switch: a single row, so it can be on for at most one run at a time.
CREATE TABLE cutter_governance.execution_switch (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  enabled    boolean NOT NULL DEFAULT false,
  run_id     text,
  expires_at timestamptz,
  changed_at timestamptz NOT NULL DEFAULT now(),
  changed_by text NOT NULL DEFAULT 'migration',
  CHECK (NOT enabled OR (run_id IS NOT NULL AND expires_at IS NOT NULL))
);
INSERT INTO cutter_governance.execution_switch (id) VALUES (true);

-- Exactly-once execution: a second application of the same plan violates this key.
CREATE TABLE cutter_governance.execution_ledger (
  run_id      text PRIMARY KEY REFERENCES cutter_governance.cut_change_set (run_id),
  plan_sha256 text NOT NULL CHECK (plan_sha256 ~ '^[0-9a-f]{64}$'),
  unit_count  integer NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
);
