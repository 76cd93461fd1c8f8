import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { localSovereign } from '../../shared/demo/sovereign.js';
import { waitFor } from './poll.js';
import type { RunEnv } from './run-env.js';

/**
 * A live run carried to its end for real: the gate opened by a sovereign's
 * SG_1 and EXEC through the real submit path, the backup phase's own dump,
 * execute under the exec role, verify. What a restore of that run's backup
 * must never re-arm.
 */
export interface AppliedRun {
  runId: string;
  /** The backup its backup phase took: after the gate consumed the approvals and the EXEC grant turned the switch on. */
  backupFile: string;
  planSha256: string;
}

/** Trusts a local sovereign in the env's SOVEREIGN_KEYS (call before the fleet starts); returns its signer. */
export function trustLocalSovereign(env: RunEnv): ReturnType<typeof localSovereign> {
  const sovereign = localSovereign(join(env.dir, 'local-sovereign'));
  for (const name of readdirSync(sovereign.keysDir)) copyFileSync(join(sovereign.keysDir, name), join(env.sovereign.dir, name));
  return sovereign;
}

/** Enqueues a live run on the env's running fleet, approves it at SG_1 and waits for it to succeed. */
export async function runAppliedLive(env: RunEnv, sovereign: ReturnType<typeof localSovereign>): Promise<AppliedRun> {
  const runId = await env.enqueue('live');
  await waitFor(`run ${runId} to await approval`, async () => {
    const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
    if (rows[0]?.status === 'failed') throw new Error(`run ${runId} failed before its gate`);
    return rows[0]?.status === 'awaiting_approval' ? true : undefined;
  }, { deadlineMs: 60_000 });
  await sovereign.approve({ cfg: env.cfg, pool: env.db.pool, redis: env.redis }, runId);
  const view = await env.waitForEnd(runId, 90_000);
  if (view.status !== 'succeeded') throw new Error(`run ${runId} ended ${view.status}: ${JSON.stringify(view.error)}`);
  const { rows } = await env.db.pool.query<{ file: string; plan_sha256: string }>(
    `SELECT p.summary->>'file' AS file, l.plan_sha256
       FROM cutter_governance.run_phase p JOIN cutter_governance.execution_ledger l ON l.run_id = p.run_id
      WHERE p.run_id = $1 AND p.phase = 'backup'`,
    [runId],
  );
  const row = rows[0];
  if (!row) throw new Error(`run ${runId} has no backup result or no ledger row`);
  return { runId, backupFile: row.file, planSha256: row.plan_sha256 };
}

/**
 * Adds an execute job for the run by hand, as someone with Redis access
 * could, under the run's queue prefix, and waits for a worker to finish it
 * (completed or failed); returns that state.
 */
export async function handAddedExecute(env: RunEnv, runId: string, jobId: string): Promise<string> {
  const execute = new Queue('execute', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
  try {
    const job = await execute.add('execute', { runId }, { jobId, attempts: 1 });
    return await waitFor(`hand-added execute job ${jobId} to finish`, async () => {
      const state = await job.getState();
      return state === 'completed' || state === 'failed' ? state : undefined;
    }, { deadlineMs: 30_000 });
  } finally {
    await execute.close();
  }
}
