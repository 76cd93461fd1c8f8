import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { localSovereign } from '../../shared/demo/sovereign.js';
import { MOMENTS, type PhaseMoment } from '../../shared/jobs/moments.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { createRunEnv } from '../support/run-env.js';
import type { WorkerProcess } from '../support/worker-process.js';
import { killDuring, STALL_BOUND_MS } from './support/kill.js';
import { CHAOS_FULL, recordRunTrials, runEffect, violation, type CorpusFingerprint, type RunEffect } from './support/outcomes.js';

/**
 * SIGKILL of a worker in every phase of a live run at three points (before
 * the phase's side effect, in the middle, after it but before the job
 * completes). A second worker, started after the kill, must pick the stalled
 * job up within STALL_BOUND_MS (support/kill.ts), and the run must end
 * succeeded with the plan applied exactly once, or failed closed with
 * nothing applied.
 */

// `npm test` kills at the three points where a wrong answer would hurt most;
// `npm run test:chaos` kills at every point of every phase, twice.
const FAST_POINTS: PhaseMoment[] = ['approval-gate.middle', 'execute.middle', 'execute.after'];
const ALL_POINTS: PhaseMoment[] = PHASES.flatMap((p) => MOMENTS.map((m) => `${p}.${m}` as const));
const POINTS = CHAOS_FULL ? ALL_POINTS : FAST_POINTS;
const REPEATS = CHAOS_FULL ? 2 : 1;

interface Trial {
  effect: RunEffect;
  violation: string | null;
  pickupMs: number;
}

/**
 * One live run on a database of its own: worker A (every phase) stops at
 * `point`, is SIGKILLed there, and worker B (no fault) carries the run on.
 * With control.disableLedger both workers run the negative control
 * (test/support/fault-preload.ts): B's re-delivered execute must not find
 * A's ledger row.
 */
async function killTrial(point: PhaseMoment, control: { disableLedger?: boolean } = {}): Promise<Trial> {
  const env = await createRunEnv('killmx');
  const workers: WorkerProcess[] = [];
  try {
    const sovereign = localSovereign(join(env.dir, 'sovereign'));
    const workerEnv = { ...env.env, SOVEREIGN_KEYS: sovereign.keysDir };
    let before: CorpusFingerprint = [];
    const { runId, pickupMs } = await killDuring(env, {
      point,
      workerEnv,
      cfg: parseConfig(workerEnv),
      sovereign,
      control,
      workers,
      enqueue: async () => {
        before = await env.corpus();
        return env.enqueue('live');
      },
    });
    const effect = await runEffect(env.db.pool, runId, before);
    return { effect, violation: violation(effect, 'live'), pickupMs };
  } finally {
    for (const w of workers) await w.kill();
    await env.close();
  }
}

function summarise(results: Trial[]): { ended: number; doubles: number; partials: number; split: string; maxPickup: number } {
  const by = (s: string, a: RunEffect['applied']) => results.filter((r) => r.effect.status === s && r.effect.applied === a).length;
  return {
    ended: results.filter((r) => ['succeeded', 'failed', 'expired'].includes(r.effect.status)).length,
    doubles: results.filter((r) => r.effect.applied === 'double' || r.effect.reapplyAttempts > 0).length,
    partials: results.filter((r) => r.effect.applied === 'partial').length,
    split: `succeeded+applied once ${by('succeeded', 'once')}, failed+nothing applied ${by('failed', 'none')}`,
    maxPickup: Math.max(...results.map((r) => r.pickupMs)),
  };
}

describe('SIGKILL of a worker in every phase', () => {
  for (const point of POINTS) {
    it(`at ${point}: the run ends applied exactly once or failed closed, and another worker picks the job up within ${STALL_BOUND_MS / 1000} s`, async () => {
      const results: Trial[] = [];
      for (let i = 0; i < REPEATS; i += 1) results.push(await killTrial(point));
      const s = summarise(results);
      recordRunTrials({
        group: 'worker SIGKILL (live runs)',
        fault: `SIGKILL at ${point}`,
        tries: results.length,
        ...s,
        notes: `${s.split}; picked up again after ≤ ${(s.maxPickup / 1000).toFixed(1)} s`,
      });
      expect(results.map((r) => r.violation)).toEqual(results.map(() => null));
      // A kill after the commit must not turn into a failed run: the ledger makes the re-delivery a no-op.
      if (point === 'execute.after') expect(results.map((r) => r.effect.status)).toEqual(results.map(() => 'succeeded'));
    }, 200_000 * REPEATS);
  }
});

describe('the negative control: execute ledger disabled (the fault preload, test only)', () => {
  it('the kill matrix detects the second application a re-delivered execute attempts after its commit', async () => {
    const results: Trial[] = [];
    for (let i = 0; i < REPEATS; i += 1) results.push(await killTrial('execute.after', { disableLedger: true }));
    const s = summarise(results);
    recordRunTrials({
      group: 'negative control (ledger disabled)',
      fault: 'SIGKILL at execute.after, CUTTER_TEST_DISABLE_LEDGER=true',
      tries: results.length,
      ...s,
      notes: `detected: ${results.map((r) => r.violation ?? 'nothing').join('; ')}`,
    });
    // Every trial is caught: the suite fails when the ledger does not protect execute.
    for (const r of results) {
      expect(r.violation).toMatch(/tried to apply again/);
      expect(r.effect.reapplyAttempts).toBeGreaterThan(0);
    }
  }, 200_000 * REPEATS);
});
