import { createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { Harness } from '../support/approval-harness.js';
import type { FloorPath } from './approval-floor.js';

/**
 * The approval figure's design bound: the floor's path plus every step
 * DESIGN §3 and issue 7 require between the completing POST and execute,
 * each done the cheapest way this bench knows, none of cutter's code. It
 * answers "how close to the floor can any implementation of the contract
 * get on this machine?", beside which cutter's own overhead reads.
 *
 * POST: the envelope's signature verified (Ed25519, a trusted key looked up
 * by its id); the document parsed strictly (every line, in order) and bound
 * to the run as this process read it when the SG_1 arrived (run, target,
 * plan hash, signed/expiry times and the 72 h limit, the allowance, no
 * self-approval). Then one statement, one durable commit: under the run's
 * row lock, while it awaits approval and its window is open, store the
 * decision (its nonce unique), turn the
 * kill switch on for it if no other run holds it (EXEC), append its audit
 * row to a hash chain (a one-row chain head, updated in the same statement),
 * and answer the run's unconsumed decisions. Those are handed to the gate in
 * Redis just before the promote, on the same connection.
 *
 * Gate: both documents parsed, bound and their signatures verified again;
 * one statement, one durable commit, consumes exactly those decisions if
 * PostgreSQL still holds them unchanged and they arrived inside the window,
 * sets the run running and records the gate's phase row; anything else
 * rolls the statement back.
 */

const HANDOFF_TTL_MS = 60_000;
const MAX_VALIDITY_MS = 72 * 3600_000;
const SKEW_MS = 120_000;
const UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const LINES = ['cutter-approval', 'gate', 'run_id', 'target', 'plan_sha256', 'signed_utc', 'expires_utc', 'allowance', 'nonce'] as const;

/** What the run binds an approval to, as the bench keeps it from the SG_1's arrival. */
interface Binding {
  target: string;
  plan: string;
  units: number;
  transitions: string[];
  operator: string;
}

interface Envelope {
  document: string;
  signature: string;
  key_id: string;
}

/** The document's values by line name, or a throw: exactly LINES, in order, LF, one final LF. */
function parse(document: string): Record<(typeof LINES)[number], string> {
  const lines = document.split('\n');
  if (lines.length !== LINES.length + 1 || lines[LINES.length] !== '') throw new Error('not the document\'s lines');
  const out = {} as Record<(typeof LINES)[number], string>;
  LINES.forEach((name, i) => {
    const line = lines[i] ?? '';
    if (!line.startsWith(`${name}: `)) throw new Error(`line ${i + 1} is not ${name}`);
    out[name] = line.slice(name.length + 2);
  });
  return out;
}

/** The checks DESIGN §3 makes of one envelope for run id (stored or arriving), at now; returns its gate and nonce. */
function judge(e: Envelope, id: string, run: Binding, keys: Map<string, { name: string; key: KeyObject }>, now: number): { gate: string; nonce: string } {
  const key = keys.get(e.key_id);
  if (!key) throw new Error('unknown key');
  if (!verify(null, Buffer.from(e.document), key.key, Buffer.from(e.signature, 'base64'))) throw new Error('bad signature');
  const d = parse(e.document);
  if (d['cutter-approval'] !== 'v1' || (d.gate !== 'SG_1' && d.gate !== 'EXEC')) throw new Error('not an approval');
  if (d.run_id !== id || d.target !== run.target || d.plan_sha256 !== run.plan || !HEX64.test(d.plan_sha256)) throw new Error('another run');
  if (!UTC.test(d.signed_utc) || !UTC.test(d.expires_utc) || !HEX32.test(d.nonce)) throw new Error('malformed');
  const signed = Date.parse(d.signed_utc);
  const expires = Date.parse(d.expires_utc);
  if (signed > now + SKEW_MS || expires <= now || expires - signed > MAX_VALIDITY_MS) throw new Error('not valid now');
  if (d.gate === 'EXEC') {
    if (d.allowance !== 'execution_enabled=true') throw new Error('allowance');
  } else {
    const m = /^max_units=(\d+); transitions=(.+)$/.exec(d.allowance);
    const allowed = new Set(m?.[2]?.split(','));
    if (!m || Number(m[1]) < run.units || run.transitions.some((t) => !allowed.has(t))) throw new Error('allowance too small');
  }
  if (key.name === run.operator) throw new Error('self-approval');
  return { gate: d.gate, nonce: d.nonce };
}

/** One round's SG_1 or EXEC: a document in DESIGN §3's form, signed by the bench's trusted key. */
function envelope(id: string, gate: 'SG_1' | 'EXEC', run: Binding, privateKey: KeyObject, keyId: string): Envelope {
  const now = Date.now();
  const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const allowance = gate === 'EXEC' ? 'execution_enabled=true' : `max_units=${run.units}; transitions=${run.transitions.join(',')}`;
  const values = ['v1', gate, id, run.target, run.plan, at(now), at(now + 3600_000), allowance, randomBytes(16).toString('hex')];
  const document = LINES.map((name, i) => `${name}: ${values[i] ?? ''}\n`).join('');
  return { document, signature: sign(null, Buffer.from(document), privateKey).toString('base64'), key_id: keyId };
}

async function createTables(h: Harness): Promise<void> {
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_run (
    id text PRIMARY KEY, status text NOT NULL, window_ends timestamptz NOT NULL)`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_decision (
    id bigserial PRIMARY KEY, run text NOT NULL REFERENCES bench_bound_run (id), gate text NOT NULL, key_id text NOT NULL,
    document text NOT NULL, signature text NOT NULL, nonce text NOT NULL UNIQUE, received timestamptz NOT NULL DEFAULT now(),
    consumed timestamptz)`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_audit (
    seq bigint PRIMARY KEY, run text NOT NULL, kind text NOT NULL, detail jsonb NOT NULL, prev_hash text NOT NULL, hash text NOT NULL)`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_chain (one boolean PRIMARY KEY DEFAULT true, seq bigint NOT NULL DEFAULT 0,
    prev text NOT NULL DEFAULT repeat('0', 64), hash text NOT NULL DEFAULT repeat('0', 64))`);
  await h.pool.query(`INSERT INTO bench_bound_chain DEFAULT VALUES ON CONFLICT DO NOTHING`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_switch (one boolean PRIMARY KEY DEFAULT true, run text, expires timestamptz)`);
  await h.pool.query(`INSERT INTO bench_bound_switch DEFAULT VALUES ON CONFLICT DO NOTHING`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_phase (
    run text NOT NULL REFERENCES bench_bound_run (id), phase text NOT NULL, started timestamptz NOT NULL, finished timestamptz NOT NULL,
    PRIMARY KEY (run, phase))`);
}

/** The store: one statement, one commit; answers the run's unconsumed decisions when this one was stored, none otherwise. */
const STORE = `
  WITH r AS (SELECT id FROM bench_bound_run WHERE id = $1 AND status = 'awaiting_approval' AND window_ends > now() FOR UPDATE),
       s AS (UPDATE bench_bound_switch SET run = $1, expires = now() + interval '1 hour'
              WHERE $2 = 'EXEC' AND EXISTS (SELECT 1 FROM r) AND (run IS NULL OR run = $1 OR expires <= now()) RETURNING 1),
       d AS (INSERT INTO bench_bound_decision (run, gate, key_id, document, signature, nonce)
             SELECT $1, $2, $3, $4, $5, $6 FROM r WHERE $2 <> 'EXEC' OR EXISTS (SELECT 1 FROM s)
             RETURNING id, key_id, document, signature),
       h AS (UPDATE bench_bound_chain c SET seq = c.seq + 1, prev = c.hash, hash = encode(sha256(convert_to(
               concat_ws('|', c.seq + 1, $1, 'approval.accepted', d.id, c.hash), 'UTF8')), 'hex')
             FROM d RETURNING c.seq, c.prev, c.hash, d.id),
       a AS (INSERT INTO bench_bound_audit (seq, run, kind, detail, prev_hash, hash)
             SELECT seq, $1, 'approval.accepted', jsonb_build_object('decision_id', id), prev, hash FROM h)
  SELECT id::text, key_id, document, signature FROM d
  UNION ALL SELECT id::text, key_id, document, signature FROM bench_bound_decision WHERE run = $1 AND consumed IS NULL AND EXISTS (SELECT 1 FROM d)`;

/** The gate's opening: one statement, one commit; raises (rolling it all back) unless every decision judged is consumed now. */
const OPEN = `
  WITH c AS (UPDATE bench_bound_decision SET consumed = now()
              WHERE id = ANY ($2::bigint[]) AND run = $1 AND consumed IS NULL AND md5(document || signature) = ANY ($3::text[])
                AND received < (SELECT window_ends FROM bench_bound_run WHERE id = $1) RETURNING id),
       r AS (UPDATE bench_bound_run SET status = 'running'
              WHERE id = $1 AND status = 'awaiting_approval' AND (SELECT count(*) FROM c) = cardinality($2::bigint[]) RETURNING id),
       p AS (INSERT INTO bench_bound_phase (run, phase, started, finished) SELECT id, 'approval-gate', $4, now() FROM r)
  SELECT 1 / (SELECT count(*)::int FROM r) AS opened`;

export async function designBoundPath(h: Harness, gate: Queue): Promise<FloorPath> {
  await createTables(h);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyId = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
  const keys = new Map([[keyId, { name: 'bench-sovereign', key: publicKey }]]);
  const bindings = new Map<string, Binding>();
  const handoffKey = (id: string) => gate.toKey(`bound-handoff:${id}`);
  const store = async (id: string, e: Envelope, run: Binding) => {
    const { gate: g, nonce } = judge(e, id, run, keys, Date.now());
    const { rows } = await h.pool.query<Envelope & { id: string }>(STORE, [id, g, e.key_id, e.document, e.signature, nonce]);
    if (rows.length === 0) throw new Error('not stored');
    return rows;
  };
  return {
    prepare: async (id) => {
      const run: Binding = { target: 'bench-target', plan: randomBytes(32).toString('hex'), units: 1, transitions: ['draft->enacted'], operator: 'bench-operator' };
      // The previous round's run is over: its switch goes off, as cutter's execute stub turns it off.
      await h.pool.query(`UPDATE bench_bound_switch SET run = NULL, expires = NULL`);
      await h.pool.query(`INSERT INTO bench_bound_run (id, status, window_ends) VALUES ($1, 'awaiting_approval', now() + interval '1 hour')`, [id]);
      await store(id, envelope(id, 'SG_1', run, privateKey, keyId), run);
      // What the SG_1's arrival read of the run, kept for the approvals after it (cutter's binding cache).
      bindings.set(id, run);
      return JSON.stringify(envelope(id, 'EXEC', run, privateKey, keyId));
    },
    handle: async (id, body) => {
      const run = bindings.get(id);
      if (!run) throw new Error('unknown run');
      const unconsumed = await store(id, body as Envelope, run);
      const exec = unconsumed.filter((r) => r.document.includes('\ngate: EXEC\n')).length;
      if (exec === 0 || unconsumed.length - exec === 0) throw new Error('not complete');
      const client = await gate.getBackend().client;
      const left = client.set(handoffKey(id), JSON.stringify(unconsumed), { PX: HANDOFF_TTL_MS });
      await new Job(gate, 'gate', {}, {}, `${id}.gate`).promote();
      await left;
    },
    gateWork: async (id) => {
      const started = new Date();
      const run = bindings.get(id);
      const client = await gate.getBackend().client;
      const rows = JSON.parse((await client.get(handoffKey(id))) ?? '[]') as (Envelope & { id: string })[];
      if (!run || rows.length < 2) throw new Error('no handoff');
      const now = Date.now();
      for (const r of rows) judge(r, id, run, keys, now);
      await h.pool.query(OPEN, [id, rows.map((r) => r.id), rows.map((r) => createHash('md5').update(r.document + r.signature).digest('hex')), started]);
      bindings.delete(id);
    },
  };
}
