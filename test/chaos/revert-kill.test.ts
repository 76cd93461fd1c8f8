import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { enqueueRevert } from '../../producers/flow/enqueue-revert.js';
import { parseConfig } from '../../shared/config.js';
import { localSovereign } from '../../shared/demo/sovereign.js';
import type { PhaseMoment } from '../../shared/jobs/moments.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { killDuring, STALL_BOUND_MS } from './support/kill.js';
import { CHAOS_FULL, recordRunTrials, runEffect, violation, type CorpusFingerprint, type RunEffect } from './support/outcomes.js';

/**
 * SIGKILL of a worker during a live revert's execute (`cutter revert`,
 * docs/undo.md): a revert is applied by the same apply_plan under the same
 * ledger as any run, so it too must end applied exactly once (every unit
 * back as before the cut it reverts) or failed closed with nothing applied.
 * The cut itself is made first by a worker with no fault.
 */

// `npm test` kills in the middle of the apply; `npm run test:chaos` before, in and after it, twice.
const POINTS: PhaseMoment[] = CHAOS_FULL ? ['execute.before', 'execute.middle', 'execute.after'] : ['execute.middle'];
const REPEATS = CHAOS_FULL ? 2 : 1;

interface Trial {
  effect: RunEffect;
  violation: string | null;
  pickupMs: number;
}

/** Each ICX-WORK unit's state and current body hash, by key. */
async function unitsNow(env: RunEnv): Promise<Map<string, string>> {
  const { rows } = await env.db.pool.query<{ key: string; state: string; sha: string }>(
    `SELECT u.key, u.state, v.body_sha256 AS sha FROM information_unit u
       JOIN unit_version v ON v.unit_id = u.id AND v.version = u.current_version WHERE u.corpus = 'ICX-WORK'`,
  );
  return new Map(rows.map((r) => [r.key, `${r.state} ${r.sha}`]));
}

/** A succeeded revert left each unit of the cut as before it, and each unit the cut created retired; what differs, or null. */
function notAsBeforeCut(before: Map<string, string>, afterCut: Map<string, string>, now: Map<string, string>): string | null {
  for (const [k, was] of afterCut) {
    const expected = before.get(k) ?? `retired ${was.split(' ')[1] ?? ''}`;
    if (now.get(k) !== expected) return `${k} is ${now.get(k) ?? 'gone'}, not ${expected} as before the cut`;
  }
  return null;
}

/**
 * One database: the demo cut applied live by a steady worker, then its
 * revert, during which worker A stops at `point` and is SIGKILLed there and
 * worker B carries the revert on.
 */
async function revertKillTrial(point: PhaseMoment): Promise<Trial> {
  const env = await createRunEnv('revkill');
  const workers: WorkerProcess[] = [];
  try {
    const sovereign = localSovereign(join(env.dir, 'sovereign'));
    const workerEnv = { ...env.env, SOVEREIGN_KEYS: sovereign.keysDir };
    const cfg = parseConfig(workerEnv);

    const beforeCut = await unitsNow(env);
    const steady = await startWorkerProcess(workerEnv);
    const cutId = await env.enqueue('live');
    await waitFor(`cut ${cutId} to await approval`, async () => {
      const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [cutId]);
      return rows[0]?.status === 'awaiting_approval' ? true : undefined;
    }, { deadlineMs: 60_000 });
    await sovereign.approve({ cfg, pool: env.db.pool, redis: env.redis }, cutId);
    expect((await env.waitForEnd(cutId, 90_000)).status).toBe('succeeded');
    await steady.stop();
    const afterCut = new Map([...(await unitsNow(env))].filter(([k, v]) => beforeCut.get(k) !== v));

    let before: CorpusFingerprint = [];
    const { runId, pickupMs } = await killDuring(env, {
      point,
      workerEnv,
      cfg,
      sovereign,
      workers,
      enqueue: async () => {
        before = await env.corpus();
        const revert = await enqueueRevert(
          { pool: env.db.pool, redis: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX },
          { revertOf: cutId, mode: 'live', skipDrifted: false, operator: 'tester', approvalWindowS: 3600 },
        );
        return revert.runId;
      },
    });
    const effect = await runEffect(env.db.pool, runId, before);
    const wrong = violation(effect, 'live') ?? (effect.status === 'succeeded' ? notAsBeforeCut(beforeCut, afterCut, await unitsNow(env)) : null);
    return { effect, violation: wrong, pickupMs };
  } finally {
    for (const w of workers) await w.kill();
    await env.close();
  }
}

describe('SIGKILL of a worker during a live revert', () => {
  for (const point of POINTS) {
    it(`at ${point}: the revert ends applied exactly once (every unit as before the cut) or failed closed, picked up within ${STALL_BOUND_MS / 1000} s`, async () => {
      const results: Trial[] = [];
      for (let i = 0; i < REPEATS; i += 1) results.push(await revertKillTrial(point));
      const by = (s: string, a: RunEffect['applied']) => results.filter((r) => r.effect.status === s && r.effect.applied === a).length;
      const maxPickup = Math.max(...results.map((r) => r.pickupMs));
      recordRunTrials({
        group: 'worker SIGKILL (live reverts)',
        fault: `SIGKILL at ${point} of a revert`,
        tries: results.length,
        ended: results.filter((r) => ['succeeded', 'failed', 'expired'].includes(r.effect.status)).length,
        doubles: results.filter((r) => r.effect.applied === 'double' || r.effect.reapplyAttempts > 0).length,
        partials: results.filter((r) => r.effect.applied === 'partial').length,
        notes: `succeeded+applied once ${by('succeeded', 'once')}, failed+nothing applied ${by('failed', 'none')}; picked up again after ≤ ${(maxPickup / 1000).toFixed(1)} s`,
      });
      expect(results.map((r) => r.violation)).toEqual(results.map(() => null));
      // Killed after its commit, the revert must not fail: the ledger makes the re-delivery a no-op.
      if (point === 'execute.after') expect(results.map((r) => r.effect.status)).toEqual(results.map(() => 'succeeded'));
    }, 300_000 * REPEATS);
  }
});
