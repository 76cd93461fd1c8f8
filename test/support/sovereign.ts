import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import type { Pool } from '../../shared/db/pool.js';
import type { RunBinding } from '../../shared/approval/validate.js';
import { waitFor } from './poll.js';

/**
 * Sovereign keys and approvals for tests, written independently of
 * shared/approval: documents are spelled out line by line from DESIGN §3 and
 * key ids computed from the raw key, so a bug in the code under test cannot
 * hide itself by also shaping the test's input.
 */

export interface TestKey {
  name: string;
  privateKey: KeyObject;
  publicPem: string;
  privatePem: string;
  keyId: string;
}

// SPKI DER of an Ed25519 key = this fixed 12-byte header + the 32-byte raw key (RFC 8410).
const ED25519_SPKI_HEADER = Buffer.from('302a300506032b6570032100', 'hex');

/** A new Ed25519 key named `name`, with its key id computed from the raw key bytes. */
export function makeKey(name: string): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const keyId = createHash('sha256').update(Buffer.concat([ED25519_SPKI_HEADER, raw])).digest('hex').slice(0, 16);
  return {
    name,
    privateKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keyId,
  };
}

/** Writes each key's public half as DIR/<name>.pem (a SOVEREIGN_KEYS directory); returns DIR. */
export function writeTrustedKeys(dir: string, keys: TestKey[]): string {
  mkdirSync(dir, { recursive: true });
  for (const k of keys) writeFileSync(join(dir, `${k.name}.pem`), k.publicPem);
  return dir;
}

/** Every transition kind: an allowance that covers any plan's kinds. */
export const ALL_TRANSITIONS = 'new->draft,new->enacted,draft->enacted,draft->retired,enacted->retired,revise';

/** The nine values of a document, as text. */
export interface DocFields {
  version: string;
  gate: string;
  run_id: string;
  target: string;
  plan_sha256: string;
  signed_utc: string;
  expires_utc: string;
  allowance: string;
  nonce: string;
}

/** 2026-11-24T02:15:00Z */
/** A run awaiting approval, fixed in time, for the validator's unit and fuzz tests. */
export const FIXED_NOW = new Date('2026-11-24T10:00:00Z');
export const FIXED_RUN = {
  runId: 'run-20261124-095000-aaaaaa',
  target: 'icx-work',
  status: 'awaiting_approval',
  operator: 'tester',
  enqueuedBy: 'ops_login',
  planSha256: 'cd'.repeat(32),
  scope: { unitCount: 55, transitions: ['draft->enacted', 'new->draft', 'revise'] },
} as const satisfies RunBinding;

export function utc(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** 32 lowercase hex digits. */
export function freshNonce(): string {
  return randomBytes(16).toString('hex');
}

/** Fields of a valid document for a run: signed a minute ago, valid for an hour. */
export function fieldsFor(run: { runId: string; target: string; planSha256: string }, gate: 'SG_1' | 'EXEC' | 'REJECT', over: Partial<DocFields> = {}): DocFields {
  const now = Date.now();
  return {
    version: 'v1',
    gate,
    run_id: run.runId,
    target: run.target,
    plan_sha256: run.planSha256,
    signed_utc: utc(new Date(now - 60_000)),
    expires_utc: utc(new Date(now + 3600_000)),
    allowance: gate === 'EXEC' ? 'execution_enabled=true' : gate === 'REJECT' ? 'reason=rejected by the test' : `max_units=500; transitions=${ALL_TRANSITIONS}`,
    nonce: freshNonce(),
    ...over,
  };
}

/** The document text of DESIGN §3, spelled out. */
export function documentText(f: DocFields): string {
  return (
    `cutter-approval: ${f.version}\n` +
    `gate: ${f.gate}\n` +
    `run_id: ${f.run_id}\n` +
    `target: ${f.target}\n` +
    `plan_sha256: ${f.plan_sha256}\n` +
    `signed_utc: ${f.signed_utc}\n` +
    `expires_utc: ${f.expires_utc}\n` +
    `allowance: ${f.allowance}\n` +
    `nonce: ${f.nonce}\n`
  );
}

export interface Envelope {
  document: string;
  signature: string;
  key_id: string;
}

/** Signs text's UTF-8 bytes with key; key_id can be overridden to forge a claim. */
export function envelopeOf(text: string, key: TestKey, keyId = key.keyId): Envelope {
  return { document: text, signature: sign(null, Buffer.from(text, 'utf8'), key.privateKey).toString('base64'), key_id: keyId };
}

/** A signed valid approval for a run. */
export function approvalFor(run: { runId: string; target: string; planSha256: string }, gate: 'SG_1' | 'EXEC' | 'REJECT', key: TestKey, over: Partial<DocFields> = {}): Envelope {
  return envelopeOf(documentText(fieldsFor(run, gate, over)), key);
}

/** The run's target and frozen plan hash, as a signer would read them. */
export async function runToSign(pool: Pool, runId: string): Promise<{ runId: string; target: string; planSha256: string }> {
  const { rows } = await pool.query<{ target: string; plan_sha256: string }>(
    `SELECT r.target, c.plan_sha256 FROM cutter_governance.run r
       JOIN cutter_governance.cut_change_set c ON c.run_id = r.run_id WHERE r.run_id = $1`,
    [runId],
  );
  const row = rows[0];
  if (!row) throw new Error(`run ${runId} has no plan yet`);
  return { runId, target: row.target, planSha256: row.plan_sha256 };
}

/**
 * Stores valid SG_1 and EXEC approvals for a run as already consumed, as a
 * gate that opened would leave them: for tests that stand in for the gate.
 */
export async function insertConsumedApprovals(pool: Pool, runId: string, key: TestKey): Promise<void> {
  const run = await runToSign(pool, runId);
  for (const gate of ['SG_1', 'EXEC'] as const) {
    const f = fieldsFor(run, gate);
    const env = envelopeOf(documentText(f), key);
    await pool.query(
      `INSERT INTO cutter_governance.review_decision
         (run_id, gate, key_id, key_name, document, signature, nonce, plan_sha256, signed_utc, expires_utc, consumed_utc)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())`,
      [runId, gate, key.keyId, key.name, env.document, env.signature, f.nonce, run.planSha256, f.signed_utc, f.expires_utc],
    );
  }
}

/** POSTs a body to the approval endpoint; body objects are sent as JSON, strings as they are. */
export async function postApproval(
  baseUrl: string,
  runId: string,
  body: unknown,
  options: { contentType?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${baseUrl}/runs/${encodeURIComponent(runId)}/approvals`, {
    method: 'POST',
    headers: { 'content-type': options.contentType ?? 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
}

/** The BullMQ state of a run's gate job ('delayed' while it waits for approval). */
export async function gateJobState(redis: RedisClient, prefix: string, runId: string): Promise<string> {
  const queue = new Queue('approval-gate', { connection: redis, prefix });
  try {
    const job = await queue.getJob(`${runId}.approval-gate`);
    return job ? await job.getState() : 'missing';
  } finally {
    await queue.close();
  }
}

/** Waits until the run is awaiting approval and its gate job sits in `delayed`; returns what a signer needs. */
export async function waitForGate(
  env: { db: { pool: Pool }; redis: RedisClient; cfg: { CUTTER_QUEUE_PREFIX: string } },
  runId: string,
): Promise<{ runId: string; target: string; planSha256: string }> {
  await waitFor(`run ${runId} to pause at SG_1 with its gate delayed`, async () => {
    const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
    if (rows[0]?.status !== 'awaiting_approval') return undefined;
    return (await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runId)) === 'delayed' ? true : undefined;
  }, { deadlineMs: 60_000, stepMs: 50 });
  return runToSign(env.db.pool, runId);
}

/** Writes an NDJSON snapshot that enacts the demo drafts ICX-WORK/<from..to> unchanged in body. */
export function enactingSnapshot(dir: string, from: number, to: number): string {
  const lines: string[] = [];
  for (let n = from; n <= to; n += 1) {
    const key = `ICX-WORK/${String(n).padStart(3, '0')}`;
    lines.push(JSON.stringify({ key, state: 'enacted', body: `${key}: demo information unit, text of version 1.` }));
  }
  const file = join(dir, `enact-${from}-${to}.ndjson`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}
