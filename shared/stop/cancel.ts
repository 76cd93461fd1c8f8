import type { Queue } from 'bullmq';
import { CutterError } from '../errors.js';
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { removeRunJobs } from '../jobs/cleanup.js';
import type { Phase } from '../jobs/catalog.js';
import { buildReport } from '../runs/report.js';
import type { StoppedStatus } from '../runs/status.js';
import { saveReport } from '../runs/store.js';

/**
 * Saying no to a run: `cutter cancel` (cancelled) here, a signed rejection
 * (rejected) through store_approval. Both end the run in
 * cutter_governance.stop_run under the run's row lock, which decides
 * against execute's claim (shared/db/functions/stop_run.sql); the report is
 * written in the same commit, and the run's jobs leave the queues after it
 * (shared/jobs/cleanup.ts removeRunJobs).
 */

/** stop_run's answer: see shared/db/functions/stop_run.sql. */
export interface StopOutcome {
  outcome: 'stopped' | 'already' | 'ended' | 'execute_begun' | 'unknown';
  /** The run's status after the call (null for an unknown run). */
  status: string | null;
  /** The run's phase; for execute_begun, the phase that began (execute or verify). */
  phase: string | null;
}

/** A reason: 1-200 printable ASCII characters, as a signed rejection's. */
export const STOP_REASON = /^[\x20-\x7e]{1,200}$/;

/** Cancels a run in Postgres: stop_run, and the report in the same commit when it ended the run. */
export async function cancelRunInDb(pool: Pool, args: { runId: string; actor: string; reason: string }): Promise<StopOutcome> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ outcome: StopOutcome['outcome']; run_status: string | null; run_phase: string | null }>(
      'SELECT * FROM cutter_governance.stop_run($1, $2, $3, $4, $5::jsonb)',
      [args.runId, 'cancelled' satisfies StoppedStatus, args.actor, args.reason, JSON.stringify({ actor: args.actor, reason: args.reason })],
    );
    const row = rows[0];
    const outcome: StopOutcome = { outcome: row?.outcome ?? 'unknown', status: row?.run_status ?? null, phase: row?.run_phase ?? null };
    if (outcome.outcome === 'stopped') await saveStoppedReport(tx, args.runId);
    return outcome;
  });
}

/** The report of a run this transaction just stopped (whoever sees it ended also sees why). */
export async function saveStoppedReport(tx: PoolClient, runId: string): Promise<void> {
  await saveReport(tx, runId, await buildReport(tx, runId));
}

/**
 * cutter cancel: ends the run cancelled when execute has not begun, then
 * removes its jobs (again for a run already cancelled: a cancel that died
 * between its commit and the removal is finished by the next one).
 * activeJobs: phases whose job was active and is left to its runner.
 */
export async function cancelRun(
  deps: { pool: Pool; queues: Record<Phase, Queue> },
  args: { runId: string; actor: string; reason: string },
): Promise<StopOutcome & { activeJobs: Phase[] }> {
  const outcome = await cancelRunInDb(deps.pool, args);
  const done = outcome.outcome === 'stopped' || outcome.outcome === 'already';
  if (!done) return { ...outcome, activeJobs: [] };
  try {
    return { ...outcome, activeJobs: await removeRunJobs(deps.queues, args.runId) };
  } catch (err) {
    throw new CutterError(
      'CANCEL_JOBS_NOT_REMOVED',
      `run ${args.runId} is cancelled, but its jobs could not be removed from Redis (${(err as Error).message}): run the same cancel again once Redis answers`,
      { cause: err },
    );
  }
}
