import type { Config } from '../../../shared/config.js';
import type { LocalSovereign } from '../../../shared/demo/sovereign.js';
import type { Phase } from '../../../shared/jobs/catalog.js';
import type { PhaseMoment } from '../../../shared/jobs/moments.js';
import { waitFor } from '../../support/poll.js';
import type { RunEnv } from '../../support/run-env.js';
import { startWorkerProcess, type WorkerProcess } from '../../support/worker-process.js';

/**
 * A worker SIGKILLed in the middle of a live run, as the chaos suite does
 * it: worker A stops at a phase moment and is killed there, worker B
 * (started after the kill) must pick the stalled job up within
 * STALL_BOUND_MS (lock 5 s + stall check 2 s, WORKER_LOCKS) and carry the
 * run to its end. The sovereign approves whenever the run waits at SG_1,
 * through the real submit path.
 */
export const STALL_BOUND_MS = 15_000;

const ENDED = ['succeeded', 'failed', 'expired'];

/** Whether the killed phase was picked up again: its attempt count grew, or the run moved past it. */
async function pickedUp(env: RunEnv, runId: string, phase: Phase): Promise<true | undefined> {
  const { rows } = await env.db.pool.query<{ attempts: number; state: string; status: string }>(
    `SELECT p.attempts, p.state, r.status FROM cutter_governance.run_phase p
       JOIN cutter_governance.run r ON r.run_id = p.run_id
      WHERE p.run_id = $1 AND p.phase = $2`,
    [runId, phase],
  );
  const row = rows[0];
  return row && (row.attempts > 1 || row.state !== 'active' || ENDED.includes(row.status)) ? true : undefined;
}

export interface KillArgs {
  point: PhaseMoment;
  /** The workers' environment (SOVEREIGN_KEYS the sovereign's) and its parsed form. */
  workerEnv: Record<string, string>;
  cfg: Config;
  sovereign: LocalSovereign;
  /** The negative control: both workers run with execute's ledger check disabled. */
  control?: { disableLedger?: boolean };
  /** Enqueues the run once worker A is ready; returns its id. */
  enqueue: () => Promise<string>;
  /** Every worker started goes here, for the caller to kill when the trial ends. */
  workers: WorkerProcess[];
}

/** Runs one killed run to its end; returns its id and how long the killed phase waited for worker B. */
export async function killDuring(env: RunEnv, args: KillArgs): Promise<{ runId: string; pickupMs: number }> {
  const phase = args.point.slice(0, args.point.lastIndexOf('.')) as Phase;
  const doomed = await startWorkerProcess(args.workerEnv, { fault: args.point, ...args.control });
  args.workers.push(doomed);
  const runId = await args.enqueue();

  // Approves once, whenever the run reaches the gate (before or after the kill).
  let approving: Promise<void> | undefined;
  let approveError: Error | undefined;
  const approveWhenPaused = async (): Promise<void> => {
    if (approving) return;
    const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
    if (rows[0]?.status !== 'awaiting_approval') return;
    approving = args.sovereign.approve({ cfg: args.cfg, pool: env.db.pool, redis: env.redis }, runId).catch((err: unknown) => {
      approveError = err instanceof Error ? err : new Error(`approval failed: ${JSON.stringify(err)}`);
    });
  };

  await waitFor(`worker A to stop at ${args.point}`, async () => {
    await approveWhenPaused();
    return Promise.race([doomed.paused, Promise.resolve(undefined)]);
  }, { deadlineMs: 60_000 });
  await doomed.kill();
  const killedAt = Date.now();

  args.workers.push(await startWorkerProcess(args.workerEnv, args.control));
  await waitFor(`another worker to pick ${phase} up`, () => pickedUp(env, runId, phase), { deadlineMs: STALL_BOUND_MS, stepMs: 100 });
  const pickupMs = Date.now() - killedAt;

  await waitFor(`run ${runId} to end`, async () => {
    await approveWhenPaused();
    const { rows } = await env.db.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
    return ENDED.includes(rows[0]?.status ?? '') ? true : undefined;
  }, { deadlineMs: 90_000, stepMs: 100 });
  await approving;
  if (approveError) throw approveError;
  return { runId, pickupMs };
}
