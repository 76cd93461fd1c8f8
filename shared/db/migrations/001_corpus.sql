-- The corpus (DESIGN §2). Column names are a contract other tools read.
CREATE TABLE public.information_unit (
  id              bigserial PRIMARY KEY,
  corpus          text NOT NULL CHECK (corpus ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  key             text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$'),
  state           text NOT NULL CHECK (state IN ('draft', 'enacted', 'retired')),
  current_version integer NOT NULL CHECK (current_version >= 1),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT information_unit_corpus_key_unique UNIQUE (corpus, key)
);

CREATE TABLE public.unit_version (
  unit_id        bigint NOT NULL REFERENCES public.information_unit (id),
  version        integer NOT NULL CHECK (version >= 1),
  body           text NOT NULL,
  -- The hash is stored for readers, and the database refuses one that lies.
  body_sha256    text NOT NULL CHECK (body_sha256 = encode(sha256(convert_to(body, 'UTF8')), 'hex')),
  created_by_run text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (unit_id, version)
);

CREATE TABLE public.iu_lifecycle_log (
  id         bigserial PRIMARY KEY,
  unit_id    bigint NOT NULL REFERENCES public.information_unit (id),
  from_state text CHECK (from_state IN ('draft', 'enacted', 'retired')),
  to_state   text NOT NULL CHECK (to_state IN ('draft', 'enacted', 'retired')),
  version    integer NOT NULL CHECK (version >= 1),
  run_id     text,
  actor      text NOT NULL,
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX iu_lifecycle_log_unit_idx ON public.iu_lifecycle_log (unit_id);
CREATE INDEX iu_lifecycle_log_run_idx ON public.iu_lifecycle_log (run_id);
