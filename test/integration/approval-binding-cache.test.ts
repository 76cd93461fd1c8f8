import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { BindingCache } from '../../shared/approval/binding-cache.js';
import { submitApproval, type ApprovalDeps } from '../../shared/approval/submit.js';
import { errorCode } from '../../shared/errors.js';
import { createRedis } from '../../shared/redis.js';
import { approvalDatabase } from '../support/approval-db.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { approvalFor, makeKey, type Envelope } from '../support/sovereign.js';

/**
 * The board keeps the frozen binding of a run awaiting approval
 * (BindingCache), so the approval that completes the run does not read the
 * run again. A cached binding may only let an approval through to the store,
 * which decides status and window again under the run's lock; whatever
 * changed behind it, an approval is refused with exactly the code a fresh
 * read gives, and nothing is stored.
 */

const alice = makeKey('alice');
const bob = makeKey('bob');
const env = approvalDatabase('approval-binding-cache', [alice, bob]);
const redis = createRedis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const gateQueue = new Queue('approval-gate', { connection: redis, prefix: `test-binding-cache-${process.pid}` });

afterAll(async () => {
  await gateQueue.obliterate({ force: true });
  await gateQueue.close();
  redis.disconnect();
});

/** The binding read's text (loadGateRun): the run joined with its change set. */
const BINDING_READ = 'LEFT JOIN cutter_governance.cut_change_set';

/** Approval deps over a pool that counts the binding reads; quorum 2, so one SG_1 and an EXEC never release. */
function deps(bindings: BindingCache | undefined): ApprovalDeps & { bindingReads: () => number } {
  let reads = 0;
  const counting = new Proxy(env.db.pool, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return (text: unknown, ...rest: unknown[]) => {
        if (typeof text === 'string' && text.includes(BINDING_READ)) reads += 1;
        return (target.query as (...a: unknown[]) => unknown)(text, ...rest);
      };
    },
  });
  const base = { pool: counting, keys: env.keys, quorum: 2, gateQueue, log: pino({ level: 'silent' }), releaseWaitMs: 0, bindingReads: () => reads };
  return bindings ? { ...base, bindings } : base;
}

async function decisions(runId: string): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.review_decision WHERE run_id = $1', [runId]);
  return rows[0]?.n ?? -1;
}

const refusalOf = (d: ApprovalDeps, run: PausedRun, envelope: Envelope) =>
  submitApproval(d, run.runId, envelope).then(
    () => 'accepted',
    (err: unknown) => errorCode(err),
  );

describe('the binding cache of the approval endpoint', () => {
  it('reads a run once: the next approval for it costs only the store', async () => {
    const run = await insertPausedRun(env.db.pool);
    const cached = deps(new BindingCache());
    await submitApproval(cached, run.runId, approvalFor(run, 'SG_1', alice));
    const answer = await submitApproval(cached, run.runId, approvalFor(run, 'EXEC', bob));
    expect(answer).toMatchObject({ accepted: true, gate: 'EXEC', released: false, waiting_for: ['SG_1'] });
    expect(cached.bindingReads()).toBe(1);
    expect(await decisions(run.runId)).toBe(2);
    await env.db.pool.query(`SELECT cutter_governance.disarm_execution('test')`);

    // Without the cache every approval reads its run.
    const other = await insertPausedRun(env.db.pool);
    const uncached = deps(undefined);
    await submitApproval(uncached, other.runId, approvalFor(other, 'SG_1', alice));
    await submitApproval(uncached, other.runId, approvalFor(other, 'SG_1', bob));
    expect(uncached.bindingReads()).toBe(2);
  });

  it('refuses as a fresh read does when the run changed behind it, and stores nothing', async () => {
    const cases: { name: string; change: string; envelope: (run: PausedRun) => Envelope; code: string }[] = [
      { name: 'run ended', change: `status = 'failed'`, envelope: (run) => approvalFor(run, 'SG_1', bob), code: 'APPROVAL_RUN_NOT_AWAITING' },
      // A fresh read checks the status before the target: so must the cached path.
      { name: 'run ended, wrong target', change: `status = 'failed'`, envelope: (run) => approvalFor(run, 'SG_1', bob, { target: 'icx-const' }), code: 'APPROVAL_RUN_NOT_AWAITING' },
      { name: 'run gone on, wrong plan', change: `status = 'running'`, envelope: (run) => approvalFor(run, 'SG_1', bob, { plan_sha256: 'ab'.repeat(32) }), code: 'APPROVAL_RUN_NOT_AWAITING' },
      { name: 'nothing changed, wrong plan', change: `status = status`, envelope: (run) => approvalFor(run, 'SG_1', bob, { plan_sha256: 'ab'.repeat(32) }), code: 'APPROVAL_PLAN_MISMATCH' },
    ];
    for (const c of cases) {
      const run = await insertPausedRun(env.db.pool);
      const cached = deps(new BindingCache());
      expect(await refusalOf(cached, run, approvalFor(run, 'SG_1', alice)), c.name).toBe('accepted');
      await env.db.pool.query(`UPDATE cutter_governance.run SET ${c.change} WHERE run_id = $1`, [run.runId]);
      const envelope = c.envelope(run);
      expect(await refusalOf(cached, run, envelope), c.name).toBe(c.code);
      expect(await refusalOf(deps(undefined), run, envelope), c.name).toBe(c.code);
      expect(await decisions(run.runId), c.name).toBe(1);
    }
  });
});

describe('BindingCache', () => {
  const binding = (runId: string, status = 'awaiting_approval') => ({
    runId,
    target: 'icx-work',
    status,
    operator: 'op',
    mode: 'live' as const,
    approvalWindowS: 3600,
    planSha256: 'cd'.repeat(32),
    scope: { unitCount: 1, transitions: ['draft->enacted'] },
    windowEndsAt: new Date(Date.now() + 3600_000),
  });

  it('keeps only runs awaiting approval with a plan, and forgets the oldest beyond its capacity', () => {
    const cache = new BindingCache(2);
    cache.remember(binding('run-a'));
    cache.remember(binding('run-b', 'running'));
    cache.remember({ ...binding('run-c'), planSha256: null });
    expect(cache.get('run-a')?.runId).toBe('run-a');
    expect(cache.get('run-b')).toBeUndefined();
    expect(cache.get('run-c')).toBeUndefined();
    cache.remember(binding('run-d'));
    cache.remember(binding('run-e'));
    expect(cache.get('run-a')).toBeUndefined();
    expect([cache.get('run-d')?.runId, cache.get('run-e')?.runId]).toEqual(['run-d', 'run-e']);
    cache.forget('run-d');
    expect(cache.get('run-d')).toBeUndefined();
  });
});
