import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHASES } from '../../shared/jobs/catalog.js';
import { getPhases } from '../../shared/runs/store.js';
import { startFleet, type Fleet } from '../../workers/fleet.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

let env: RunEnv;
let late: Fleet | undefined;
beforeAll(async () => {
  env = await createRunEnv('precheckwk');
});
afterAll(async () => {
  await late?.close();
  await env.close();
});

const withoutVerify = PHASES.filter((p) => p !== 'verify');

async function precheckAttempts(runId: string): Promise<number | undefined> {
  const phase = (await getPhases(env.db.pool, runId)).find((p) => p.phase === 'precheck');
  return phase?.attempts;
}

describe('precheck, when a phase has no worker', () => {
  it('retries, so a worker that comes back (e.g. reconnecting after a Redis restart) lets the run go on', async () => {
    await env.startFleet(undefined, withoutVerify);
    const runId = await env.enqueue('dry');
    await waitFor('precheck to retry', async () => ((await precheckAttempts(runId)) ?? 0) >= 2 || undefined);
    late = await startFleet({ cfg: env.cfg, log: pino({ level: 'silent' }), phases: ['verify'] });
    const view = await env.waitForEnd(runId);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    await late.close();
    late = undefined;
  });

  it('fails the run closed with PRECHECK_NO_WORKERS naming the phase once its attempts are spent', async () => {
    await env.startFleet(undefined, withoutVerify);
    const runId = await env.enqueue('dry');
    const view = await env.waitForEnd(runId);
    expect(view.status).toBe('failed');
    expect(view.failed_phase).toBe('precheck');
    expect(view.error?.code).toBe('PRECHECK_NO_WORKERS');
    expect(view.error?.message).toContain('verify');
    expect(await precheckAttempts(runId)).toBe(3);
  });
});
