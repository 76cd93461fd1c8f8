import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutterError } from '../../shared/errors.js';
import { PHASES, type Phase } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import { reconcileOnce, RUN_LOST, RUN_LOST_AFTER_APPLY, type ReconcileDeps } from '../../shared/runs/reconcile.js';
import { insertRun } from '../../shared/runs/store.js';
import { runView } from '../../shared/runs/view.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { startFleet, type StandIns, type Fleet } from '../../workers/fleet.js';
import { runEffect } from '../chaos/support/outcomes.js';
import { auditRowHead, reportHead } from '../support/audit-head.js';
import { waitFor } from '../support/poll.js';
import { armSwitch, createRunEnv, DEMO_SNAPSHOT, type RunEnv, STAND_IN_GATE } from '../support/run-env.js';

/**
 * The reconciler against real Redis and Postgres: a vanished flow is made by
 * obliterating the test's own queues (its prefix is private), which is what a
 * Redis restarted without persistence leaves behind. The fleet's own loop is
 * slowed to an hour so that only the calls in this file decide.
 */

const silent = pino({ level: 'silent' });
let env: RunEnv;
let queues: Record<Phase, Queue>;
let fleet: Fleet | undefined;
const deps = (enqueueGraceMs: number): ReconcileDeps => ({ pool: env.db.pool, queues, prefix: env.cfg.CUTTER_QUEUE_PREFIX, log: silent, enqueueGraceMs });

beforeAll(async () => {
  env = await createRunEnv('reconcile');
  queues = Object.fromEntries(PHASES.map((p) => [p, new Queue(p, { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX })])) as Record<Phase, Queue>;
});
afterAll(async () => {
  await fleet?.close();
  for (const q of Object.values(queues)) await q.close();
  await env.close();
});

async function useFleet(processors: StandIns = {}): Promise<void> {
  await fleet?.close();
  fleet = await startFleet({ cfg: env.cfg, log: silent, processors, reconcile: { intervalMs: 3_600_000 } });
}

/**
 * What Redis without persistence leaves after a crash, for this test's
 * prefix only: none of its keys. (Obliterating the queues is no stand-in: it
 * keeps jobs that wait for children, and removing a child releases its parent.)
 */
async function loseAllJobs(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await env.redis.scan(cursor, 'MATCH', `${env.cfg.CUTTER_QUEUE_PREFIX}:*`, 'COUNT', 500);
    if (keys.length) await env.redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

async function row(runId: string) {
  const { rows } = await env.db.pool.query<{ status: string; error_code: string | null; failed_phase: string | null; error_message: string | null; report: string | null }>(
    'SELECT status, error_code, failed_phase, error_message, report FROM cutter_governance.run WHERE run_id = $1',
    [runId],
  );
  return rows[0];
}

async function lostEvents(runId: string): Promise<number> {
  const { rows } = await env.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM cutter_governance.audit_event WHERE kind = 'run.lost' AND run_id = $1`, [runId]);
  return rows[0]?.n ?? -1;
}

const awaiting = (runId: string) =>
  waitFor(`run ${runId} awaiting approval`, async () => ((await row(runId))?.status === 'awaiting_approval' ? true : undefined), { deadlineMs: 30_000 });

describe('the reconciler', () => {
  it('never touches a run whose jobs exist, nor a run still inside the enqueue grace, nor one whose execute holds the lock', async () => {
    await useFleet();
    const live = await env.enqueue('live', { approvalWindowS: 3600 });
    await awaiting(live);
    // Enqueue writes the row before it adds the flow: this is that moment.
    const fresh = 'run-reconcile-fresh-01';
    await insertRun(env.db.pool, {
      runId: fresh, target: 'icx-work', corpus: 'ICX-WORK', mode: 'dry', operator: 'tester',
      snapshotPath: DEMO_SNAPSHOT, snapshotSha256: '0'.repeat(64), idempotencyKey: null, approvalWindowS: 60,
    });
    expect(await reconcileOnce(deps(30_000))).toEqual([]);
    expect((await row(fresh))?.status).toBe('queued');
    expect((await row(live))?.status).toBe('awaiting_approval');

    // An execute in progress holds the run's advisory lock: wait for it, decide nothing.
    const holder = await env.db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('cutter.execute'), hashtext($1))`, [fresh]);
      expect(await reconcileOnce(deps(0))).toEqual([]);
      expect((await row(fresh))?.status).toBe('queued');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    // Past the grace and unlocked, a run with no jobs at all is lost; the live run's jobs still exist.
    const lost = await reconcileOnce(deps(0));
    expect(lost).toEqual([expect.objectContaining({ runId: fresh, code: RUN_LOST, applied: false, missing: ['precheck', 'grant-probe', 'discover', 'cutplan', 'backup', 'execute', 'verify'] })]);
    expect((await row(live))?.status).toBe('awaiting_approval');
  });

  it('fails closed a live run whose flow vanished while it awaited approval: lock released, switch off, audited once', async () => {
    const { rows } = await env.db.pool.query<{ run_id: string }>(`SELECT run_id FROM cutter_governance.run WHERE status = 'awaiting_approval'`);
    const runId = rows[0]?.run_id ?? '';
    const before = await env.corpus();
    // An EXEC grant had already armed the switch for this run when Redis lost it.
    await armSwitch(env, runId);
    await loseAllJobs();
    const lost = await reconcileOnce(deps(30_000));
    expect(lost).toEqual([{ runId, code: RUN_LOST, status: 'awaiting_approval', phase: 'cutplan', missing: ['approval-gate', 'backup', 'execute', 'verify'], failed: [], applied: false }]);
    const ended = await row(runId);
    expect(ended).toMatchObject({ status: 'failed', error_code: RUN_LOST, failed_phase: 'approval-gate' });
    expect(ended?.error_message).toMatch(/no approval-gate, backup, execute, verify job under prefix .*nothing was applied/);
    expect(ended?.report).toContain('RUN_LOST');
    // The report names the audit chain's head with the run's end in it: its run.lost row.
    expect(await reportHead(env.db.pool, runId)).toBe(await auditRowHead(env.db.pool, 'run.lost', runId));
    const cutplan = await env.db.pool.query<{ state: string }>(`SELECT state FROM cutter_governance.run_phase WHERE run_id = $1 AND phase = 'cutplan'`, [runId]);
    expect(cutplan.rows[0]?.state).toBe('completed');
    expect((await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock')).rowCount).toBe(0);
    const armed = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
    expect(armed.rows[0]?.on).toBe(false);
    expect(await env.corpus()).toEqual(before);
    expect(await lostEvents(runId)).toBe(1);
    // Idempotent: a second pass (or a second fleet) finds nothing more to do.
    expect(await reconcileOnce(deps(0))).toEqual([]);
    expect(await lostEvents(runId)).toBe(1);
  });

  it('says the plan WAS applied when the flow vanished after execute committed', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const gate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return STAND_IN_GATE;
    };
    // Verify is held open so the flow can vanish between execute's commit and the verdict.
    const parkedVerify: PhaseProcessor<'verify'> = async () => {
      await released;
      throw new CutterError('TEST_PARKED', 'parked verify let go');
    };
    await useFleet({ 'approval-gate': gate, verify: parkedVerify });
    const before = await env.corpus();
    const runId = await env.enqueue('live', { approvalWindowS: 1 });
    await waitFor('verify to start', async () => ((await env.db.pool.query(`SELECT 1 FROM cutter_governance.run WHERE run_id = $1 AND phase = 'verify'`, [runId])).rowCount ? true : undefined), { deadlineMs: 60_000 });
    await loseAllJobs();
    const lost = await reconcileOnce(deps(30_000));
    expect(lost).toEqual([expect.objectContaining({ runId, code: RUN_LOST_AFTER_APPLY, applied: true, missing: ['verify'] })]);
    const ended = await row(runId);
    expect(ended).toMatchObject({ status: 'failed', error_code: RUN_LOST_AFTER_APPLY, failed_phase: 'verify' });
    expect(ended?.error_message).toMatch(/WAS applied \(55 units, execution_ledger at .*verification \(G8\) never ran/);
    const effect = await runEffect(env.db.pool, runId, before);
    expect(effect).toMatchObject({ applied: 'once', ledgerRows: 1, reapplyAttempts: 0 });
    expect((await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock')).rowCount).toBe(0);
    // The run view still reads every phase's stored result.
    const view = await runView(env.db.pool, runId);
    expect(view?.phases.find((p) => p.phase === 'execute')).toMatchObject({ state: 'completed', summary: { mode: 'live', applied: true, units_updated: 45 } });
    release();
    // The parked verify ends late; the run keeps the reconciler's verdict.
    await fleet?.close();
    fleet = undefined;
    expect((await row(runId))?.error_code).toBe(RUN_LOST_AFTER_APPLY);
    expect(await lostEvents(runId)).toBe(1);
  });

  it('fails closed a run whose job failed for good in the queue while Postgres still had it in flight', async () => {
    await fleet?.close();
    fleet = undefined;
    const runId = await env.enqueue('dry');
    // Stands in for a last attempt that could not record the run's failure
    // (Postgres unreachable then): the job fails, the run row stays queued.
    const connection = createRedis(env.cfg.REDIS_URL, 'worker');
    const doomed = new Worker('precheck', () => Promise.reject(new UnrecoverableError('postgres unreachable')), {
      connection,
      prefix: env.cfg.CUTTER_QUEUE_PREFIX,
    });
    try {
      await waitFor('the precheck job to fail', async () => ((await queues.precheck.getJobState(`${runId}.precheck`)) === 'failed' ? true : undefined));
    } finally {
      await doomed.close();
      connection.disconnect();
    }
    expect((await row(runId))?.status).toBe('queued');
    const lost = await reconcileOnce(deps(0));
    expect(lost).toEqual([expect.objectContaining({ runId, code: RUN_LOST, applied: false, failed: ['precheck'] })]);
    const ended = await row(runId);
    expect(ended).toMatchObject({ status: 'failed', error_code: RUN_LOST, failed_phase: 'precheck' });
    expect(ended?.error_message).toMatch(/its precheck job failed for good in the queue while Postgres still had the run queued/);
    expect((await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock')).rowCount).toBe(0);
    expect(await lostEvents(runId)).toBe(1);
  });
});
