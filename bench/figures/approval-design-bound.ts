import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { Harness } from '../support/approval-harness.js';
import type { FloorPath } from './approval-floor.js';

/**
 * The approval figure's design bound: the floor's path plus everything
 * DESIGN §3 and issue 7 require between the completing POST and execute,
 * each done the cheapest way this bench knows, none of cutter's code. It
 * answers "how close to the floor can any implementation of the contract
 * get on this machine?", beside which cutter's own overhead reads.
 *
 * POST: the envelope's signature verified (Ed25519, one trusted key) and its
 * document's run line checked; one statement, one durable commit, stores the
 * decision (its nonce UNIQUE) only while the run awaits approval, writes its
 * audit row, turns the kill switch on for the run and answers the run's
 * unconsumed decisions; those are handed to the gate in Redis just before
 * the promote, on the same connection (cutter's handoff). Gate: both
 * signatures verified again, and one statement, one durable commit, consumes
 * exactly those decisions if PostgreSQL still holds them unchanged.
 *
 * Left out, though cutter does them: the full line-by-line parse and the
 * other binding checks (target, plan hash, times, allowance), the quorum and
 * self-approval rules, the run lock and window checks in the database, a
 * hash-chained audit, the gate's phase bookkeeping and its audit row.
 */

const HANDOFF_TTL_MS = 60_000;

/** One round's SG_1 and EXEC: documents signed by the bench's trusted key. */
function envelope(id: string, gate: 'SG_1' | 'EXEC', privateKey: KeyObject): { document: string; signature: string; nonce: string } {
  const nonce = `${id}-${gate}`;
  const document = `cutter-approval: v1\ngate: ${gate}\nrun_id: ${id}\nnonce: ${nonce}\n`;
  return { document, signature: sign(null, Buffer.from(document), privateKey).toString('base64'), nonce };
}

function verified(e: { document?: unknown; signature?: unknown }, publicKey: KeyObject): { document: string; signature: string } {
  if (typeof e.document !== 'string' || typeof e.signature !== 'string') throw new Error('not an envelope');
  if (!verify(null, Buffer.from(e.document), publicKey, Buffer.from(e.signature, 'base64'))) throw new Error('bad signature');
  return { document: e.document, signature: e.signature };
}

export async function designBoundPath(h: Harness, gate: Queue): Promise<FloorPath> {
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_run (id text PRIMARY KEY, status text NOT NULL)`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_decision (
    id bigserial PRIMARY KEY, run text NOT NULL REFERENCES bench_bound_run (id), gate text NOT NULL, document text NOT NULL,
    signature text NOT NULL, nonce text NOT NULL UNIQUE, received timestamptz NOT NULL DEFAULT now(), consumed timestamptz)`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_audit (id bigserial PRIMARY KEY, run text NOT NULL, kind text NOT NULL, detail jsonb NOT NULL)`);
  await h.pool.query(`CREATE TABLE IF NOT EXISTS bench_bound_switch (one boolean PRIMARY KEY DEFAULT true, run text)`);
  await h.pool.query(`INSERT INTO bench_bound_switch DEFAULT VALUES ON CONFLICT DO NOTHING`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const handoffKey = (id: string) => gate.toKey(`bound-handoff:${id}`);
  const store = (id: string, e: { document: string; signature: string; nonce: string }, gateName: 'SG_1' | 'EXEC') =>
    h.pool.query<{ id: string; document: string; signature: string }>(
      `WITH ok AS (SELECT 1 FROM bench_bound_run WHERE id = $1 AND status = 'awaiting_approval'),
            d AS (INSERT INTO bench_bound_decision (run, gate, document, signature, nonce)
                  SELECT $1, $2, $3, $4, $5 FROM ok RETURNING id, document, signature),
            a AS (INSERT INTO bench_bound_audit (run, kind, detail) SELECT $1, 'approval.accepted', jsonb_build_object('decision_id', id) FROM d),
            s AS (UPDATE bench_bound_switch SET run = $1 WHERE $2 = 'EXEC' AND EXISTS (SELECT 1 FROM d))
       SELECT id::text, document, signature FROM d
       UNION ALL SELECT id::text, document, signature FROM bench_bound_decision WHERE run = $1 AND consumed IS NULL`,
      [id, gateName, e.document, e.signature, e.nonce],
    );
  return {
    prepare: async (id) => {
      await h.pool.query(`INSERT INTO bench_bound_run (id, status) VALUES ($1, 'awaiting_approval')`, [id]);
      await store(id, envelope(id, 'SG_1', privateKey), 'SG_1');
      return JSON.stringify(envelope(id, 'EXEC', privateKey));
    },
    handle: async (id, body) => {
      const e = verified(body as { document?: unknown; signature?: unknown }, publicKey);
      if (!e.document.includes(`\nrun_id: ${id}\n`)) throw new Error('another run');
      const nonce = /\nnonce: (\S+)\n/.exec(e.document)?.[1] ?? '';
      const { rows } = await store(id, { ...e, nonce }, 'EXEC');
      if (rows.length < 2) throw new Error('not stored, or not complete');
      const client = await gate.getBackend().client;
      const left = client.set(handoffKey(id), JSON.stringify(rows), { PX: HANDOFF_TTL_MS });
      await new Job(gate, 'gate', {}, {}, `${id}.gate`).promote();
      await left;
    },
    gateWork: async (id) => {
      const client = await gate.getBackend().client;
      const rows = JSON.parse((await client.get(handoffKey(id))) ?? '[]') as { id: string; document: string; signature: string }[];
      for (const r of rows) verified(r, publicKey);
      const { rowCount } = await h.pool.query(
        `UPDATE bench_bound_decision SET consumed = now()
          WHERE id = ANY ($1::bigint[]) AND consumed IS NULL AND md5(document || signature) = ANY ($2::text[])`,
        [rows.map((r) => r.id), rows.map((r) => createHash('md5').update(r.document + r.signature).digest('hex'))],
      );
      if (rowCount !== rows.length || rows.length < 2) throw new Error('the handoff is not what PostgreSQL holds');
    },
  };
}
