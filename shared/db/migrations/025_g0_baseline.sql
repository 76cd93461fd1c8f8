-- Recorded G0 baselines (`cutter baseline record`): the state a later
-- `cutter readiness --baseline NAME` proves the database is still in, item
-- by item. A name is recorded once; a new baseline takes a new name.
CREATE TABLE cutter_governance.g0_baseline (
  name         text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  recorded_utc timestamptz NOT NULL DEFAULT now(),
  recorded_by  text NOT NULL,
  items        jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array')
);
