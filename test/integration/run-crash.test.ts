import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHASES } from '../../shared/jobs/catalog.js';
import type { PhaseMoment } from '../../shared/jobs/moments.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { armSwitch, createRunEnv, type RunEnv, STAND_IN_GATE } from '../support/run-env.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

let env: RunEnv;
const workers: WorkerProcess[] = [];
beforeAll(async () => {
  env = await createRunEnv('runcrash');
});
afterAll(async () => {
  for (const w of workers) await w.kill();
  await env.close();
});

async function startWorker(phases: string[], fault?: PhaseMoment): Promise<WorkerProcess> {
  const w = await startWorkerProcess(env.env, { phases, fault });
  workers.push(w);
  return w;
}

describe('a worker killed in the middle of execute', () => {
  it('leaves the corpus untouched (transaction open, SIGKILL), and another worker finishes the run exactly once', async () => {
    const armingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return STAND_IN_GATE;
    };
    // Every phase but execute in-process; execute in a child that pauses before COMMIT.
    await env.startFleet({ 'approval-gate': armingGate }, PHASES.filter((p) => p !== 'execute'));
    const doomed = await startWorker(['execute'], 'execute.middle');
    const before = await env.corpus();

    // The stand-in gate runs when this short window ends (nothing promotes it).
    const runId = await env.enqueue('live', { approvalWindowS: 1 });
    await doomed.paused;
    // The apply happened inside the open transaction; nothing is visible outside it.
    expect(await env.corpus()).toEqual(before);
    await doomed.kill();
    expect(await env.corpus()).toEqual(before);

    await startWorker(['execute']);
    const view = await env.waitForEnd(runId, 90_000);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    expect(view.verdict).toBe('PASS');
    const { rows } = await env.db.pool.query<{ ledger: number; log: number }>(
      `SELECT (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger,
              (SELECT count(*)::int FROM iu_lifecycle_log WHERE run_id = $1) AS log`,
      [runId],
    );
    expect(rows[0]).toEqual({ ledger: 1, log: 55 });
  }, 120_000);
});
