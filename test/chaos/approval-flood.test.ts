import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { parseConfig } from '../../shared/config.js';
import { startFleet, type Fleet } from '../../workers/fleet.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, enactingSnapshot, envelopeOf, documentText, fieldsFor, makeKey, utc, waitForGate, writeTrustedKeys, type Envelope, type TestKey } from '../support/sovereign.js';
import { CHAOS_FULL, recordOutcome, runEffect, trials, violation } from './support/outcomes.js';

/**
 * A loopback flood of invalid approvals at the real board while the
 * sovereign's valid ones keep arriving (DESIGN §3, §5). The board runs with
 * its production rate limit (60 requests a minute per client address), so
 * the flood comes, as a distributed one would, from many loopback
 * addresses (127.x.y.z all reach 127.0.0.1 on Linux), one of them noisy
 * enough to be limited, and the sovereign posts from an address of its own.
 * Every valid approval must be accepted, no invalid one, each refused with
 * the code its fault calls for, each wave's run must end cut exactly once,
 * and the heap must not grow from wave to wave.
 */

const silent = pino({ level: 'silent' });
const WAVES = trials(3, 10);
const INVALID_PER_WAVE = trials(1200, 3000);
const PER_ATTACKER = 40; // under the limit of 60 a minute: these reach the approval rules
const NOISY = 90; // over it: the limiter must answer 429 to this address
const CONCURRENCY = 32;
const SOVEREIGN_ADDRESS = '127.0.0.2';

let env: RunEnv;
let fleet: Fleet;
let board: BoardServer;
let keyA: TestKey;
const keyB = makeKey('sovereign-b');
const operatorKey = makeKey('tester'); // trusted, but the runs' operator: self-approval
const mallory = makeKey('mallory'); // never trusted

beforeAll(async () => {
  env = await createRunEnv('apprflood');
  keyA = env.sovereign.key;
  writeTrustedKeys(env.sovereign.dir, [keyB, operatorKey]);
  // Quorum 2, so each wave has three valid approvals racing the flood: SG_1 by A and B, EXEC by A.
  const cfg = parseConfig({ ...env.env, SOVEREIGN_QUORUM: '2' });
  fleet = await startFleet({ cfg, log: silent });
  board = await startBoardServer({ cfg, log: silent, port: 0, host: '127.0.0.1' }); // production options: the limiter as shipped
}, 120_000);
afterAll(async () => {
  await board.close();
  await fleet.close();
  await env.close();
});

type Signable = { runId: string; target: string; planSha256: string };

interface Post {
  kind: string;
  from: string;
  runId: string;
  body: string;
  contentType?: string;
  /** Sent without Content-Length (chunked), so only the parser's limit can stop it. */
  chunked?: boolean;
  /** Sent only once this earlier post has been answered (a replay of an accepted approval). */
  after?: Promise<Answer>;
  /** Told the answer, for the posts that wait on this one. */
  done?: (a: Answer) => void;
  /** The refusal codes this post's fault calls for. */
  codes: string[];
  valid?: boolean;
}
interface Answer {
  status: number;
  code: string | null;
}

/**
 * One POST from a chosen loopback address, on a connection of its own: pooled keep-alive sockets
 * race the server's keep-alive timeout when the event loop is this busy, and a client-side reset
 * would read as a lost request. A reset connection is an answer too (status 0).
 */
function send(p: Post): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { 'content-type': p.contentType ?? 'application/json' };
    if (!p.chunked) headers['content-length'] = Buffer.byteLength(p.body);
    const req = http.request({ host: '127.0.0.1', port: board.port, method: 'POST', path: `/runs/${encodeURIComponent(p.runId)}/approvals`, localAddress: p.from, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let code: string | null;
        try {
          code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code ?? null;
        } catch {
          code = 'UNPARSEABLE_ANSWER'; // the board always answers JSON; this fails the kind's check
        }
        resolve({ status: res.statusCode ?? 0, code });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, code: `socket ${err.code ?? err.message}` }));
    if (p.chunked) {
      req.write(p.body.slice(0, 8192));
      req.end(p.body.slice(8192));
    } else req.end(p.body);
  });
}

/** Sends every post with CONCURRENCY in flight; answers in the posts' order. */
async function flood(posts: Post[]): Promise<Answer[]> {
  const answers: Answer[] = new Array<Answer>(posts.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < posts.length; i = next++) {
      const p = posts[i] as Post;
      if (p.after) await p.after;
      const a = await send(p);
      answers[i] = a;
      p.done?.(a);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return answers;
}

const json = (e: unknown) => JSON.stringify(e);
const flipBit = (e: Envelope): Envelope => {
  const sig = Buffer.from(e.signature, 'base64');
  sig[17] = (sig[17] as number) ^ 0x04;
  return { ...e, signature: sig.toString('base64') };
};
const UNKNOWN_RUN = 'run-00000000-000000-ffffff';

/** Each invalid kind, what it sends, and the refusal codes its fault calls for. */
function invalidKinds(run: Signable, previous: Signable | null): { kind: string; codes: string[]; make: () => Pick<Post, 'runId' | 'body' | 'contentType' | 'chunked'> }[] {
  const to = run.runId;
  // Checked against the run after its state: once the last valid approval has released the gate, the
  // run is no longer awaiting approval, and that is the refusal these get (DESIGN §5: 409, wrong state).
  const bound = (code: string) => [code, 'APPROVAL_RUN_NOT_AWAITING'];
  const sg1 = (key: TestKey, over = {}) => approvalFor(run, 'SG_1', key, over);
  return [
    { kind: 'bad signature (one bit flipped)', codes: ['APPROVAL_SIGNATURE_INVALID'], make: () => ({ runId: to, body: json(flipBit(sg1(keyA))) }) },
    { kind: 'untrusted signer claiming a trusted key id', codes: ['APPROVAL_SIGNATURE_INVALID'], make: () => ({ runId: to, body: json(envelopeOf(documentText(fieldsFor(run, 'EXEC')), mallory, keyA.keyId)) }) },
    { kind: 'unknown key', codes: ['APPROVAL_KEY_UNKNOWN'], make: () => ({ runId: to, body: json(sg1(mallory)) }) },
    { kind: 'document changed after signing', codes: ['APPROVAL_SIGNATURE_INVALID'], make: () => { const e = sg1(keyB); return { runId: to, body: json({ ...e, document: e.document.replace('max_units=500', 'max_units=900') }) }; } },
    { kind: 'garbage JSON', codes: ['BODY_NOT_JSON'], make: () => ({ runId: to, body: `{"document": ${randomBytes(24).toString('latin1')}` }) },
    // Refused on its Content-Length before the body is read; the close may reset the socket under the unread body.
    { kind: 'oversize body (Content-Length)', codes: ['BODY_TOO_LARGE', 'socket ECONNRESET', 'socket EPIPE'], make: () => ({ runId: to, body: json({ ...sg1(keyA), document: 'x'.repeat(20_000) }) }) },
    { kind: 'oversize body (chunked)', codes: ['BODY_TOO_LARGE', 'socket ECONNRESET', 'socket EPIPE'], make: () => ({ runId: to, body: json({ ...sg1(keyA), document: 'y'.repeat(20_000) }), chunked: true }) },
    { kind: 'wrong content type', codes: ['CONTENT_TYPE_UNSUPPORTED'], make: () => ({ runId: to, body: json(sg1(keyA)), contentType: 'text/plain' }) },
    { kind: 'extra envelope field', codes: ['APPROVAL_ENVELOPE_INVALID'], make: () => ({ runId: to, body: json({ ...sg1(keyA), gate: 'SG_1' }) }) },
    { kind: 'valid document posted to another run', codes: ['APPROVAL_RUN_MISMATCH', 'RUN_UNKNOWN'], make: () => ({ runId: previous?.runId ?? UNKNOWN_RUN, body: json(sg1(keyA)) }) },
    { kind: 'signed for a run that does not exist', codes: ['RUN_UNKNOWN'], make: () => ({ runId: UNKNOWN_RUN, body: json(approvalFor({ ...run, runId: UNKNOWN_RUN }, 'SG_1', keyA)) }) },
    { kind: 'signed for another plan', codes: bound('APPROVAL_PLAN_MISMATCH'), make: () => ({ runId: to, body: json(sg1(keyA, { plan_sha256: 'ab'.repeat(32) })) }) },
    { kind: 'expired', codes: bound('APPROVAL_DOCUMENT_EXPIRED'), make: () => ({ runId: to, body: json(sg1(keyB, { signed_utc: utc(new Date(Date.now() - 7200_000)), expires_utc: utc(new Date(Date.now() - 60_000)) })) }) },
    { kind: 'allowance too small', codes: bound('APPROVAL_ALLOWANCE_UNITS'), make: () => ({ runId: to, body: json(sg1(keyA, { allowance: 'max_units=1; transitions=draft->enacted' })) }) },
    { kind: 'self-approval by the operator', codes: bound('APPROVAL_SELF_APPROVAL'), make: () => ({ runId: to, body: json(sg1(operatorKey)) }) },
    ...(previous ? [{ kind: 'approval for an ended run', codes: ['APPROVAL_RUN_NOT_AWAITING'], make: () => ({ runId: previous.runId, body: json(approvalFor(previous, 'EXEC', keyA)) }) }] : []),
  ];
}

let collected = false;
/** Samples the heap after a full collection when V8 lets this process ask for one (MiB). */
function heapMiB(): number {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    collected = true;
  } catch {
    // No collection on demand: the sample includes garbage, hence the generous bound.
  }
  return Math.round((process.memoryUsage().heapUsed / 2 ** 20) * 10) / 10;
}

describe('approval endpoint under a flood of invalid approvals', () => {
  it(`accepts every valid approval, no invalid one, over ${WAVES} waves of ${INVALID_PER_WAVE}+ invalid POSTs from many addresses`, async () => {
    const byCode = new Map<string, number>();
    const unexpected: string[] = [];
    let invalidSent = 0;
    let forgeries = 0;
    let validSent = 0;
    let validAccepted = 0;
    let limited = 0;
    let enqueued = 0;
    let ended = 0;
    let doubles = 0;
    let partials = 0;
    let floodMs = 0;
    const heap: number[] = [];
    let previous: Signable | null = null;

    try {
      for (let w = 0; w < WAVES; w += 1) {
        const before = await env.corpus();
        const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 1 + 5 * w, 5 + 5 * w), approvalWindowS: 3600 });
        enqueued += 1;
        const run = await waitForGate(env, runId);
        const kinds = invalidKinds(run, previous);

        const posts: Post[] = [];
        for (let i = 0; i < INVALID_PER_WAVE; i += 1) {
          const k = kinds[i % kinds.length] as (typeof kinds)[number];
          const attacker = Math.floor(i / PER_ATTACKER);
          posts.push({ ...k.make(), kind: k.kind, codes: k.codes, from: `127.${20 + w}.${attacker >> 8}.${(attacker & 255) + 1}` });
        }
        for (let i = 0; i < NOISY; i += 1) {
          posts.push({ kind: 'noisy client', codes: ['APPROVAL_SIGNATURE_INVALID', 'RATE_LIMITED'], from: `127.1.0.${w + 1}`, runId, body: json(flipBit(approvalFor(run, 'SG_1', keyA))) });
        }
        // Shuffled, so the valid approvals and the noisy client land among every kind of junk.
        for (let i = posts.length - 1; i > 0; i -= 1) {
          const j = Math.floor(Math.random() * (i + 1));
          [posts[i], posts[j]] = [posts[j] as Post, posts[i] as Post];
        }
        const valid = [approvalFor(run, 'SG_1', keyA), approvalFor(run, 'SG_1', keyB), approvalFor(run, 'EXEC', keyA)];
        const n = posts.length;
        for (const [i, e] of valid.entries()) {
          let done: (a: Answer) => void = () => undefined;
          const answered = new Promise<Answer>((resolve) => (done = resolve));
          // The two SG_1s a third of the way in, EXEC at two thirds; each replayed once it has been answered.
          posts.splice(Math.floor(((i < 2 ? 1 : 2) * n) / 3), 0, { kind: 'valid', codes: [], valid: true, from: SOVEREIGN_ADDRESS, runId, body: json(e), done });
          const replayCodes = ['APPROVAL_NONCE_REPLAYED', 'APPROVAL_KEY_ALREADY_USED', 'APPROVAL_RUN_NOT_AWAITING'];
          posts.splice(Math.floor(((5 + i) * n) / 8), 0, { kind: 'replay of an accepted approval', codes: replayCodes, from: `127.2.${w}.${i + 1}`, runId, body: json(e), after: answered });
        }
        const started = Date.now();
        const answers = await flood(posts);
        floodMs += Date.now() - started;

        for (const [i, p] of posts.entries()) {
          const a = answers[i] as Answer;
          if (p.valid) {
            validSent += 1;
            if (a.status === 201) validAccepted += 1;
            else unexpected.push(`wave ${w}: a valid approval got ${a.status} ${a.code ?? ''}`);
            continue;
          }
          invalidSent += 1;
          const code = a.code ?? String(a.status);
          byCode.set(code, (byCode.get(code) ?? 0) + 1);
          if (a.status === 201) forgeries += 1;
          if (code === 'RATE_LIMITED') limited += 1;
          if (!p.codes.includes(code)) unexpected.push(`wave ${w}: ${p.kind} from ${p.from} got ${a.status} ${code}`);
        }

        const view = await env.waitForEnd(runId, 90_000);
        ended += 1;
        const effect = await runEffect(env.db.pool, runId, before);
        if (effect.applied === 'double') doubles += 1;
        if (effect.applied === 'partial') partials += 1;
        if (view.status !== 'succeeded') unexpected.push(`wave ${w}: run ${runId} ended ${view.status}: ${JSON.stringify(view.error)}`);
        const wrong = violation(effect, 'live');
        if (wrong) unexpected.push(`wave ${w}: run ${runId}: ${wrong}`);
        // Exactly the three valid approvals were stored for the run: no refused one left a row.
        const { rows } = await env.db.pool.query<{ nonce: string }>('SELECT nonce FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY nonce', [runId]);
        const nonces = valid.map((e) => /nonce: (\w+)/.exec(e.document)?.[1] ?? '').sort();
        if (rows.map((r) => r.nonce).join() !== nonces.join()) unexpected.push(`wave ${w}: stored nonces ${rows.map((r) => r.nonce).join()} are not the valid ones ${nonces.join()}`);
        previous = run;
        heap.push(heapMiB());
      }
    } finally {
      const codes = [...byCode].sort((a, b) => b[1] - a[1]).map(([c, k]) => `${k} ${c}`).join(', ');
      const rate = Math.round(((invalidSent + validSent) / Math.max(1, floodMs)) * 1000);
      recordOutcome({
        group: 'hostile input',
        fault: 'approval flood: invalid POSTs from many addresses, valid SG_1 (quorum 2) and EXEC interleaved',
        tries: invalidSent + validSent,
        runsEnded: ended,
        doubleApplications: doubles,
        partialApplications: partials,
        lostRuns: enqueued - ended,
        forgeriesAccepted: forgeries,
        notes: `${validAccepted}/${validSent} valid accepted (from their own address); ${invalidSent} invalid refused: ${codes}; ${limited} × 429, to the noisy address only; heap after each wave${collected ? ' (after a forced GC)' : ' (no GC on demand)'} ${heap.join(' / ')} MiB; ~${rate} requests/s on loopback${CHAOS_FULL ? ' (full)' : ''}`,
      });
    }

    // This file's runs are on icx-work; the demo seed's history holds decisions of its own (docs/design.md §2).
    const total = await env.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM cutter_governance.review_decision d JOIN cutter_governance.run r USING (run_id) WHERE r.target = 'icx-work'`,
    );
    expect(unexpected.slice(0, 20)).toEqual([]);
    expect(forgeries).toBe(0);
    expect(validAccepted).toBe(validSent);
    expect(limited).toBeGreaterThan(0); // the limiter was live, as in production
    expect(total.rows[0]?.n).toBe(3 * WAVES);
    expect(doubles + partials).toBe(0);
    // Steady memory: after the first wave has warmed everything up, later waves add no more than a generous bound.
    expect((heap.at(-1) ?? 0) - (heap[0] ?? 0)).toBeLessThan(64);
  }, CHAOS_FULL ? 900_000 : 120_000);
});
