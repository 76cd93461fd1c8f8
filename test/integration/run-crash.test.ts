import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHASES } from '../../shared/jobs/catalog.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { CLI_PATH } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { armSwitch, createRunEnv, type RunEnv } from '../support/run-env.js';

let env: RunEnv;
const children: ChildProcess[] = [];
beforeAll(async () => {
  env = await createRunEnv('runcrash');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await env.close();
});

/** A `cutter worker` process for some phases; resolves once it says it is ready. */
function startWorker(phases: string, extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; paused: Promise<void> }> {
  const child = spawn(process.execPath, [CLI_PATH, 'worker', '--phases', phases], {
    env: { PATH: process.env['PATH'] ?? '', ...env.env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  const paused = new Promise<void>((resolve) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('cutter-fault: paused')) resolve();
    });
  });
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('worker ready')) resolve({ child, paused });
    });
    child.once('exit', (code) => reject(new Error(`worker exited early (${String(code)}): ${stderr}`)));
  });
}

describe('a worker killed in the middle of execute', () => {
  it('leaves the corpus untouched (transaction open, SIGKILL), and another worker finishes the run exactly once', async () => {
    const armingGate: PhaseProcessor = async ({ run }) => {
      await armSwitch(env, run.run_id);
      return { released: 'by test' };
    };
    // Every phase but execute in-process; execute in a child that pauses before COMMIT.
    await env.startFleet({ 'approval-gate': armingGate }, PHASES.filter((p) => p !== 'execute'));
    const doomed = await startWorker('execute', { CUTTER_FAULT: 'execute.middle' });
    const before = await env.corpus();

    // The stand-in gate runs when this short window ends (nothing promotes it).
    const runId = await env.enqueue('live', { approvalWindowS: 1 });
    await doomed.paused;
    // The apply happened inside the open transaction; nothing is visible outside it.
    expect(await env.corpus()).toEqual(before);
    doomed.child.kill('SIGKILL');
    await waitFor('the killed worker to exit', () => (doomed.child.exitCode !== null || doomed.child.signalCode !== null ? true : undefined));
    expect(await env.corpus()).toEqual(before);

    await startWorker('execute');
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
