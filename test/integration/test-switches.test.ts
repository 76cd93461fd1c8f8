import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { localSovereign } from '../../shared/demo/sovereign.js';
import { PHASES, type Phase } from '../../shared/jobs/catalog.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { verifyWorker } from '../../workers/verify/process.js';
import { runEffect } from '../chaos/support/outcomes.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

/**
 * CUTTER_FAULT and CUTTER_TEST_DISABLE_LEDGER are read only by the crash
 * tests' preload (test/support/fault-preload.ts). A production worker started
 * with both in its environment must behave as if they were not there: no
 * pause, the plan applied once, and no second application by another
 * execute delivery.
 */

let env: RunEnv;
const workers: WorkerProcess[] = [];
// Lets the held verify job go (below); called on the way out too, or closing the fleet would wait for it for ever.
let releaseVerify: () => void = () => undefined;
beforeAll(async () => {
  env = await createRunEnv('switches');
});
afterAll(async () => {
  releaseVerify();
  for (const w of workers) await w.kill();
  await env.close();
});

async function lifecycleRows(runId: string): Promise<{ ledger: number; log: number; versions: number }> {
  const { rows } = await env.db.pool.query<{ ledger: number; log: number; versions: number }>(
    `SELECT (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger,
            (SELECT count(*)::int FROM iu_lifecycle_log WHERE run_id = $1) AS log,
            (SELECT count(*)::int FROM unit_version WHERE created_by_run = $1) AS versions`,
    [runId],
  );
  const row = rows[0];
  if (!row) throw new Error('no counts');
  return row;
}

async function status(runId: string): Promise<string | undefined> {
  const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
  return rows[0]?.status;
}

/** Adds the run's execute job again under a new job id, as an operator could by hand, and waits for it to end. */
async function deliverExecuteAgain(runId: string, suffix: string): Promise<{ state: string; returnvalue: unknown; failedReason: string | undefined }> {
  const queue = new Queue('execute' satisfies Phase, { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
  try {
    const job = await queue.add('execute', { runId }, { jobId: `${runId}.execute-${suffix}`, attempts: 1 });
    return await waitFor(`the hand-added execute job ${job.id ?? ''} to end`, async () => {
      const seen = await queue.getJob(job.id ?? '');
      const state = await seen?.getState();
      if (!seen || (state !== 'completed' && state !== 'failed')) return undefined;
      return { state, returnvalue: seen.returnvalue as unknown, failedReason: seen.failedReason };
    }, { deadlineMs: 30_000 });
  } finally {
    await queue.close();
  }
}

describe('a production worker with the old test switches in its environment', () => {
  it('ignores both: it never pauses, applies the plan once, and another execute delivery applies nothing', async () => {
    const sovereign = localSovereign(join(env.dir, 'sovereign'));
    const workerEnv = { ...env.env, SOVEREIGN_KEYS: sovereign.keysDir, CUTTER_FAULT: 'execute.middle', CUTTER_TEST_DISABLE_LEDGER: 'true' };
    const cfg = parseConfig(workerEnv);

    // Verify is held in-process until the second delivery is done, so the run
    // is still in flight when it arrives and execute reaches its ledger check
    // (a delivery after the run ended stops before it). Every other phase runs
    // in the plain production worker.
    let verifyStarted = false;
    const released = new Promise<void>((resolve) => (releaseVerify = resolve));
    const heldVerify: PhaseProcessor<'verify'> = async (call, deps) => {
      verifyStarted = true;
      await released;
      return verifyWorker.process(call, deps);
    };
    await env.startFleet({ verify: heldVerify }, ['verify']);
    const worker = await startWorkerProcess(workerEnv, { phases: PHASES.filter((p) => p !== 'verify') });
    workers.push(worker);
    expect(worker.child.spawnargs).not.toContain('--import'); // the binary as it ships, no preload

    const before = await env.corpus();
    const runId = await env.enqueue('live');
    await waitFor('the run to wait at SG_1', async () => ((await status(runId)) === 'awaiting_approval' ? true : undefined), { deadlineMs: 60_000 });
    await sovereign.approve({ cfg, pool: env.db.pool, redis: env.redis }, runId);
    await waitFor('execute to finish and verify to start', () => verifyStarted || undefined, { deadlineMs: 60_000 });
    const applied = await lifecycleRows(runId);
    expect(applied.ledger).toBe(1);
    expect(applied.log).toBeGreaterThan(0);
    const afterApply = await env.corpus();

    // A second execute delivery while the run is in flight, added by hand: it is not the run's own
    // job (its id says so) and execute has already run, so it does nothing at all.
    const second = await deliverExecuteAgain(runId, 'again');
    expect(second.state).toBe('failed');
    expect(second.failedReason).toMatch(/PHASE_ANOMALY/);
    expect(await lifecycleRows(runId)).toEqual(applied);
    expect(await env.corpus()).toEqual(afterApply);

    releaseVerify();
    const view = await env.waitForEnd(runId);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    expect(view.verdict).toBe('PASS');
    const effect = await runEffect(env.db.pool, runId, before);
    expect(effect).toMatchObject({ applied: 'once', ledgerRows: 1, reapplyAttempts: 0 });

    // And one more after the run ended: refused the same way, touching nothing.
    const late = await deliverExecuteAgain(runId, 'late');
    expect(late.state).toBe('failed');
    expect(await lifecycleRows(runId)).toEqual(applied);
    expect(await env.corpus()).toEqual(afterApply);

    expect(worker.child.exitCode).toBeNull();
    expect(worker.stderr()).not.toContain('cutter-fault');
  }, 180_000);
});
