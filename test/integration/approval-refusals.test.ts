import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';
import {
  approvalFor,
  documentText,
  enactingSnapshot,
  envelopeOf,
  fieldsFor,
  gateJobState,
  makeKey,
  postApproval,
  utc,
  waitForGate,
  writeTrustedKeys,
  type DocFields,
  type Envelope,
  type TestKey,
} from '../support/sovereign.js';

/**
 * Every refused input changes nothing: for each, the status and code of
 * DESIGN §5, no review_decision stored, and the gate still delayed.
 */

const silent = pino({ level: 'silent' });
let env: RunEnv;
let board: BoardServer;
let alice: TestKey;
const bob = makeKey('bob-untrusted-signer');
const stranger = makeKey('stranger');
const operatorKey = makeKey('tester'); // named like CUTTER_OPERATOR of the runs below
const carol = makeKey('carol');

type Signable = { runId: string; target: string; planSha256: string };
let runA: Signable; // failed closed after a hand promotion (its EXEC nonce is used)
let runB: Signable; // awaiting approval: the target of the refusals
let dryRun: Signable; // succeeded: not awaiting approval
let usedNonce = '';

beforeAll(async () => {
  env = await createRunEnv('apprrefuse');
  alice = env.sovereign.key;
  writeTrustedKeys(env.sovereign.dir, [operatorKey, carol]);
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: silent, port: 0, host: '127.0.0.1', options: { approvalRateLimit: { windowMs: 60_000, limit: 10_000 }, sweepIntervalMs: 60_000 } });
  const dryId = await env.enqueue('dry');
  expect((await env.waitForEnd(dryId)).status).toBe('succeeded');
  const { rows } = await env.db.pool.query<{ plan_sha256: string }>('SELECT plan_sha256 FROM cutter_governance.cut_change_set WHERE run_id = $1', [dryId]);
  dryRun = { runId: dryId, target: 'icx-work', planSha256: rows[0]?.plan_sha256 ?? '' };
}, 120_000);
afterAll(async () => {
  await board.close();
  await env.close();
});

async function decisions(): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.review_decision');
  return rows[0]?.n ?? -1;
}

async function switchOn(): Promise<boolean> {
  const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
  return rows[0]?.on ?? true;
}

describe('a gate promoted by hand', () => {
  it('executes nothing even with an EXEC grant in: the run fails closed, the switch goes off, and it is audited', async () => {
    const before = await env.corpus();
    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 80, 81), approvalWindowS: 3600 });
    runA = await waitForGate(env, runId);
    const fields = fieldsFor(runA, 'EXEC');
    usedNonce = fields.nonce;
    const exec = await postApproval(board.url, runId, envelopeOf(documentText(fields), alice));
    expect(exec.json).toMatchObject({ accepted: true, gate: 'EXEC', released: false, waiting_for: ['SG_1'] });
    expect(await switchOn()).toBe(true);

    const gate = new Queue('approval-gate', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    await (await gate.getJob(`${runId}.approval-gate`))?.promote();
    await gate.close();
    const view = await env.waitForEnd(runId);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('GATE_BYPASSED');
    expect(view.phases.find((p) => p.phase === 'execute')?.state).toBe('pending');
    expect(await env.corpus()).toEqual(before);
    expect(await switchOn()).toBe(false);
    const audit = await env.db.pool.query<{ detail: { waiting_for: string[] } }>(
      `SELECT detail FROM cutter_governance.audit_event WHERE kind = 'gate.released_without_approval' AND run_id = $1`,
      [runId],
    );
    expect(audit.rows.map((r) => r.detail.waiting_for)).toEqual([['SG_1']]);
  }, 90_000);
});

describe('refused approvals change nothing', () => {
  beforeAll(async () => {
    const runId = await env.enqueue('live', { snapshot: DEMO_SNAPSHOT, approvalWindowS: 3600 });
    runB = await waitForGate(env, runId);
  }, 90_000);

  const sg1 = (over: Partial<DocFields> = {}, key?: TestKey) => envelopeOf(documentText(fieldsFor(runB, 'SG_1', over)), key ?? alice);
  const text = (over: Partial<DocFields> = {}) => documentText(fieldsFor(runB, 'SG_1', over));
  const signedText = (t: string): Envelope => envelopeOf(t, alice);
  const lines = () => text().slice(0, -1).split('\n');
  const rejoin = (ls: string[]) => `${ls.join('\n')}\n`;
  const now = Date.now();
  const H = 3600_000;

  type Case = { what: string; status: number; code: string; send: () => ReturnType<typeof postApproval> };
  const post = (body: unknown, runId = () => runB.runId, contentType?: string) => () =>
    postApproval(board.url, runId(), body instanceof Function ? (body as () => unknown)() : body, contentType ? { contentType } : {});
  const cases: Case[] = [
    { what: 'a wrong gate', status: 409, code: 'APPROVAL_GATE_WRONG', send: post(() => sg1({ gate: 'SG_2' })) },
    { what: 'a wrong run (another run named in the document)', status: 409, code: 'APPROVAL_RUN_MISMATCH', send: post(() => sg1({ run_id: runA.runId })) },
    { what: 'a wrong target', status: 409, code: 'APPROVAL_TARGET_MISMATCH', send: post(() => sg1({ target: 'icx-const' })) },
    { what: 'a wrong plan hash', status: 409, code: 'APPROVAL_PLAN_MISMATCH', send: post(() => sg1({ plan_sha256: 'f'.repeat(64) })) },
    { what: 'an unknown key', status: 403, code: 'APPROVAL_KEY_UNKNOWN', send: post(() => sg1({}, stranger)) },
    { what: 'a signature by another key', status: 403, code: 'APPROVAL_SIGNATURE_INVALID', send: post(() => envelopeOf(text(), bob, alice.keyId)) },
    { what: 'one changed byte', status: 403, code: 'APPROVAL_SIGNATURE_INVALID', send: post(() => {
      const e = sg1();
      return { ...e, document: e.document.replace('max_units=500', 'max_units=501') };
    }) },
    { what: 'CRLF line endings', status: 400, code: 'APPROVAL_DOCUMENT_FORMAT', send: post(() => signedText(text().replace(/\n/g, '\r\n'))) },
    { what: 'a missing line', status: 400, code: 'APPROVAL_DOCUMENT_LINES', send: post(() => signedText(rejoin(lines().filter((l) => !l.startsWith('allowance:'))))) },
    { what: 'an extra line', status: 400, code: 'APPROVAL_DOCUMENT_LINES', send: post(() => signedText(rejoin([...lines(), 'note: please']))) },
    { what: 'a repeated line', status: 400, code: 'APPROVAL_DOCUMENT_LINES', send: post(() => signedText(rejoin([...lines().slice(0, 2), ...lines().slice(1)]))) },
    { what: 'reordered lines', status: 400, code: 'APPROVAL_DOCUMENT_LINES', send: post(() => {
      const l = lines();
      return signedText(rejoin([...l.slice(0, 5), l[6] ?? '', l[5] ?? '', ...l.slice(7)]));
    }) },
    { what: 'trailing whitespace', status: 400, code: 'APPROVAL_DOCUMENT_FORMAT', send: post(() => signedText(text().replace('\nnonce:', ' \nnonce:'))) },
    { what: 'no final newline', status: 400, code: 'APPROVAL_DOCUMENT_FORMAT', send: post(() => signedText(text().slice(0, -1))) },
    { what: 'uppercase hex', status: 400, code: 'APPROVAL_DOCUMENT_FIELD', send: post(() => sg1({ plan_sha256: runB.planSha256.toUpperCase() })) },
    { what: 'an uppercase nonce', status: 400, code: 'APPROVAL_DOCUMENT_FIELD', send: post(() => sg1({ nonce: 'ABCDEF0123456789ABCDEF0123456789' })) },
    { what: 'signed in the future', status: 422, code: 'APPROVAL_NOT_YET_VALID', send: post(() => sg1({ signed_utc: utc(new Date(Date.now() + 10 * 60_000)), expires_utc: utc(new Date(Date.now() + H)) })) },
    { what: 'expired', status: 422, code: 'APPROVAL_DOCUMENT_EXPIRED', send: post(() => sg1({ signed_utc: utc(new Date(now - 2 * H)), expires_utc: utc(new Date(now - H)) })) },
    { what: 'validity over 72 h', status: 422, code: 'APPROVAL_VALIDITY_TOO_LONG', send: post(() => sg1({ signed_utc: utc(new Date(now - 60_000)), expires_utc: utc(new Date(now + 73 * H)) })) },
    { what: 'expiring before it is signed', status: 422, code: 'APPROVAL_VALIDITY_INVALID', send: post(() => sg1({ signed_utc: utc(new Date(now)), expires_utc: utc(new Date(now - 1000)) })) },
    { what: 'an allowance too small in units', status: 422, code: 'APPROVAL_ALLOWANCE_UNITS', send: post(() => sg1({ allowance: 'max_units=54; transitions=new->draft,draft->enacted,revise' })) },
    { what: 'a missing transition', status: 422, code: 'APPROVAL_ALLOWANCE_TRANSITIONS', send: post(() => sg1({ allowance: 'max_units=55; transitions=new->draft,draft->enacted' })) },
    { what: 'an EXEC grant with a plan allowance', status: 400, code: 'APPROVAL_DOCUMENT_FIELD', send: post(() => envelopeOf(documentText(fieldsFor(runB, 'EXEC', { allowance: 'max_units=55; transitions=revise' })), alice)) },
    { what: "a replayed nonce (another run's)", status: 409, code: 'APPROVAL_NONCE_REPLAYED', send: post(() => approvalFor(runB, 'EXEC', alice, { nonce: usedNonce })) },
    { what: 'a run not awaiting approval', status: 409, code: 'APPROVAL_RUN_NOT_AWAITING', send: post(() => approvalFor(dryRun, 'SG_1', alice), () => dryRun.runId) },
    { what: 'a run that failed closed', status: 409, code: 'APPROVAL_RUN_NOT_AWAITING', send: post(() => approvalFor(runA, 'SG_1', alice), () => runA.runId) },
    { what: 'no such run', status: 404, code: 'RUN_UNKNOWN', send: post(() => approvalFor({ ...runB, runId: 'run-20000101-000000-000000' }, 'SG_1', alice), () => 'run-20000101-000000-000000') },
    { what: 'malformed base64', status: 400, code: 'APPROVAL_SIGNATURE_ENCODING', send: post(() => ({ ...sg1(), signature: `${sg1().signature.slice(0, 80)}!!!!!!==` })) },
    { what: 'a key_id that is not 16 hex', status: 400, code: 'APPROVAL_KEY_ID_INVALID', send: post(() => ({ ...sg1(), key_id: 'alice' })) },
    { what: 'an envelope with an extra field', status: 400, code: 'APPROVAL_ENVELOPE_INVALID', send: post(() => ({ ...sg1(), gate: 'SG_1' })) },
    { what: 'an envelope without key_id', status: 400, code: 'APPROVAL_ENVELOPE_INVALID', send: post(() => ({ document: sg1().document, signature: sg1().signature })) },
    { what: 'a JSON array', status: 400, code: 'APPROVAL_ENVELOPE_INVALID', send: post(() => [sg1()]) },
    { what: 'an oversize body', status: 413, code: 'BODY_TOO_LARGE', send: post(() => ({ ...sg1(), document: `${'x'.repeat(17 * 1024)}\n` })) },
    { what: 'a non-JSON body', status: 400, code: 'BODY_NOT_JSON', send: post('{"document": "cutter-approval: v1\\n", signature') },
    { what: 'a wrong content type', status: 415, code: 'CONTENT_TYPE_UNSUPPORTED', send: post(() => JSON.stringify(sg1()), undefined, 'text/plain') },
    { what: 'a form body', status: 415, code: 'CONTENT_TYPE_UNSUPPORTED', send: post('document=x', undefined, 'application/x-www-form-urlencoded') },
    { what: 'self-approval (a key named like the operator)', status: 403, code: 'APPROVAL_SELF_APPROVAL', send: post(() => sg1({}, operatorKey)) },
  ];

  it(`has at least 30 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases.map((c) => [c.what, c] as const))('refuses %s', async (_what, c) => {
    const before = await decisions();
    const res = await c.send();
    expect({ status: res.status, code: res.json.error?.code }, res.json.error?.message).toEqual({ status: c.status, code: c.code });
    expect(typeof res.json.error?.message).toBe('string');
    expect(await decisions()).toBe(before);
    expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runB.runId)).toBe('delayed');
  });

  it('answers 429 past the rate limit, storing nothing', async () => {
    const strict = await startBoardServer({ cfg: env.cfg, log: silent, port: 0, host: '127.0.0.1', options: { approvalRateLimit: { windowMs: 60_000, limit: 2 } } });
    try {
      const before = await decisions();
      const answers = [];
      for (let i = 0; i < 3; i += 1) answers.push(await postApproval(strict.url, runB.runId, sg1({ gate: 'SG_2' })));
      expect(answers.map((a) => a.status)).toEqual([409, 409, 429]);
      expect(answers[2]?.json.error?.code).toBe('RATE_LIMITED');
      expect(await decisions()).toBe(before);
      expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runB.runId)).toBe('delayed');
    } finally {
      await strict.close();
    }
  });

  it('takes a valid SG_1 once, and refuses its replay on the same run', async () => {
    const approval = sg1({ allowance: 'max_units=55; transitions=new->draft,draft->enacted,revise' });
    const first = await postApproval(board.url, runB.runId, approval);
    expect(first.status, JSON.stringify(first.json)).toBe(201);
    expect(first.json).toMatchObject({ accepted: true, gate: 'SG_1', released: false, waiting_for: ['EXEC'] });
    const stored = await decisions();
    const replay = await postApproval(board.url, runB.runId, approval);
    expect(replay.status).toBe(409);
    expect(replay.json.error?.code).toBe('APPROVAL_NONCE_REPLAYED');
    expect(await decisions()).toBe(stored);
    expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runB.runId)).toBe('delayed');
  });

  it('accepts exactly one of 100 concurrent replays of one valid approval', async () => {
    const before = await decisions();
    const approval = approvalFor(runB, 'SG_1', carol);
    const answers = await Promise.all(Array.from({ length: 100 }, () => postApproval(board.url, runB.runId, approval)));
    const accepted = answers.filter((a) => a.status === 201);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]?.json).toMatchObject({ accepted: true, gate: 'SG_1', released: false, waiting_for: ['EXEC'] });
    const refused = answers.filter((a) => a.status !== 201).map((a) => `${a.status} ${a.json.error?.code ?? ''}`);
    expect(new Set(refused)).toEqual(new Set(['409 APPROVAL_NONCE_REPLAYED']));
    expect(refused).toHaveLength(99);
    expect(await decisions()).toBe(before + 1);
    expect(await gateJobState(env.redis, env.cfg.CUTTER_QUEUE_PREFIX, runB.runId)).toBe('delayed');
  });

  it('then a valid EXEC grant releases the run, once, and it succeeds', async () => {
    const answer = await postApproval(board.url, runB.runId, approvalFor(runB, 'EXEC', alice));
    expect(answer.json).toMatchObject({ accepted: true, gate: 'EXEC', released: true, waiting_for: [], sg_1: { valid_keys: 2, quorum: 1 } });
    const view = await env.waitForEnd(runB.runId, 90_000);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    const released = await env.db.pool.query<{ detail: { decision_ids: number[] } }>(
      `SELECT detail FROM cutter_governance.audit_event WHERE kind = 'gate.released' AND run_id = $1`,
      [runB.runId],
    );
    expect(released.rows).toHaveLength(1);
    expect(released.rows[0]?.detail.decision_ids).toHaveLength(3);
  }, 120_000);
});
