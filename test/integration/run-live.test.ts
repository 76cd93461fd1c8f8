import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Phase } from '../../shared/jobs/catalog.js';
import { getRun } from '../../shared/runs/store.js';
import { runView } from '../../shared/runs/view.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { executeWorker } from '../../workers/execute/process.js';
import { armSwitch, createRunEnv, type RunEnv, STAND_IN_GATE } from '../support/run-env.js';
import { waitFor } from '../support/poll.js';
import { insertConsumedApprovals } from '../support/sovereign.js';

// The stand-in gates below run when this short window ends (nothing promotes them).
const STAND_IN_WINDOW = { approvalWindowS: 1 };

// Stands in for an opened gate whose EXEC grant was since withdrawn: approvals consumed, kill switch off.
const passGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
  await insertConsumedApprovals(env.db.pool, run.run_id, env.sovereign.key);
  return STAND_IN_GATE;
};

let env: RunEnv;
beforeAll(async () => {
  env = await createRunEnv('runlive');
});
afterAll(async () => {
  await env.close();
});

async function units(corpus = 'ICX-WORK') {
  const { rows } = await env.db.pool.query<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM information_unit WHERE corpus = $1 GROUP BY state ORDER BY state',
    [corpus],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

async function switchOn(): Promise<boolean> {
  const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
  return rows[0]?.on ?? true;
}

describe('a live run', () => {
  it('with the kill switch off fails in execute with the kill-switch error and changes nothing', async () => {
    await env.startFleet({ 'approval-gate': passGate });
    const before = await env.corpus();
    const runId = await env.enqueue('live', STAND_IN_WINDOW);
    const view = await env.waitForEnd(runId);
    expect(view.status).toBe('failed');
    expect(view.failed_phase).toBe('execute');
    expect(view.error?.code).toBe('KILL_SWITCH_OFF');
    expect(view.phases.find((p) => p.phase === 'backup')?.state).toBe('completed');
    expect(await env.corpus()).toEqual(before);
  });

  it('with a unit changed after cutplan fails execute on drift, naming the key, and applies nothing', async () => {
    let afterDrift: Awaited<ReturnType<RunEnv['corpus']>> = [];
    const driftingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      await env.db.pool.query(`UPDATE information_unit SET state = 'retired' WHERE key = 'ICX-WORK/007'`);
      afterDrift = await env.corpus();
      return STAND_IN_GATE;
    };
    await env.startFleet({ 'approval-gate': driftingGate });
    const runId = await env.enqueue('live', STAND_IN_WINDOW);
    const view = await env.waitForEnd(runId);
    expect(view.failed_phase).toBe('execute');
    expect(view.error?.code).toBe('EXECUTE_DRIFT');
    expect(view.error?.message).toContain('ICX-WORK/007');
    expect(await env.corpus()).toEqual(afterDrift);
    expect(await switchOn()).toBe(false);
    await env.db.pool.query(`UPDATE information_unit SET state = 'draft' WHERE key = 'ICX-WORK/007'`);
  });

  it('with the switch on for the run applies exactly the plan once, even when execute is delivered twice at once', async () => {
    const armingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return STAND_IN_GATE;
    };
    // Two deliveries of execute racing each other: one applies, one finds the ledger row.
    const twice: PhaseProcessor<'execute'> = async (call, deps) => {
      const [a, b] = await Promise.all([executeWorker.process(call, deps), executeWorker.process(call, deps)]);
      expect([a, b].filter((r) => 'applied' in r)).toHaveLength(1);
      return 'applied' in a ? a : b;
    };
    await env.startFleet({ 'approval-gate': armingGate, execute: twice });
    expect(await units()).toEqual({ draft: 98 });
    const runId = await env.enqueue('live', STAND_IN_WINDOW);
    const view = await env.waitForEnd(runId);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    expect(view.verdict).toBe('PASS');
    expect(await units()).toEqual({ draft: 68, enacted: 40 });
    const { rows } = await env.db.pool.query<{ n: number; v: number; log: number; ledger: number }>(
      `SELECT (SELECT count(*)::int FROM information_unit WHERE corpus = 'ICX-WORK') AS n,
              (SELECT count(*)::int FROM unit_version WHERE created_by_run = $1) AS v,
              (SELECT count(*)::int FROM iu_lifecycle_log WHERE run_id = $1) AS log,
              (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger`,
      [runId],
    );
    expect(rows[0]).toEqual({ n: 108, v: 15, log: 55, ledger: 1 });
    expect(await switchOn()).toBe(false);

    // A late re-delivery after success is a no-op.
    const fleet = env.fleet;
    if (!fleet) throw new Error('no fleet');
    const before = await env.corpus();
    const run = await getRun(env.db.pool, runId);
    if (!run) throw new Error('no run');
    const again = await executeWorker.process({ run, reads: null, job: {} as never, progress: () => Promise.resolve() }, fleet.deps);
    expect(again).toMatchObject({ already_applied: true });
    expect(await env.corpus()).toEqual(before);
  });

  it('expires when the approval window passes with no release, and releases the corpus lock', async () => {
    await env.startFleet();
    const runId = await env.enqueue('live', { approvalWindowS: 2 });
    await waitFor('awaiting_approval', async () => ((await runView(env.db.pool, runId))?.status === 'awaiting_approval' ? true : undefined));
    const view = await env.waitForEnd(runId);
    expect(view.status).toBe('expired');
    expect(view.failed_phase).toBe('approval-gate');
    expect(view.phases.find((p) => p.phase === 'backup')?.state).toBe('pending');
    const lock = await env.db.pool.query('SELECT 1 FROM cutter_governance.corpus_lock');
    expect(lock.rowCount).toBe(0);
  });

  it('fails closed when the gate job is promoted by hand, and audits it', async () => {
    await env.startFleet();
    const before = await env.corpus();
    const runId = await env.enqueue('live', { approvalWindowS: 3600 });
    await waitFor('awaiting_approval', async () => ((await runView(env.db.pool, runId))?.status === 'awaiting_approval' ? true : undefined));
    const gate = new Queue('approval-gate' satisfies Phase, { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    const job = await waitFor('the delayed gate job', async () => {
      const j = await gate.getJob(`${runId}.approval-gate`);
      return j && (await j.isDelayed()) ? j : undefined;
    });
    await job.promote();
    await gate.close();
    const view = await env.waitForEnd(runId);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('GATE_BYPASSED');
    expect(await env.corpus()).toEqual(before);
    const audit = await env.db.pool.query(`SELECT 1 FROM cutter_governance.audit_event WHERE kind = 'gate.released_without_approval' AND run_id = $1`, [runId]);
    expect(audit.rowCount).toBe(1);
  });

  it('a hand-added execute job for a made-up run changes nothing and is audited', async () => {
    await env.startFleet();
    const before = await env.corpus();
    const execute = new Queue('execute', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    const job = await execute.add('execute', { runId: 'run-made-up-0001' }, { jobId: 'run-made-up-0001.execute', attempts: 1 });
    await waitFor('the job to fail', async () => ((await job.isFailed()) ? true : undefined));
    const failed = await execute.getJob(job.id ?? '');
    expect(failed?.failedReason).toMatch(/RUN_UNKNOWN/);
    await execute.close();
    expect(await env.corpus()).toEqual(before);
    const audit = await env.db.pool.query<{ detail: { run_id: string } }>(
      `SELECT detail FROM cutter_governance.audit_event WHERE kind = 'execute.refused'`,
    );
    expect(audit.rows.map((r) => r.detail.run_id)).toContain('run-made-up-0001');
  });
});
