import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import type { Phase } from '../jobs/catalog.js';
import type { PhaseResult } from '../jobs/results.js';
import { claimPhase, completePhase, getPhases, lockRun, type ClaimReads, type RunRow } from '../runs/store.js';

/**
 * One phase of a demo history run, the way the phase runner
 * (workers/phase-runner.ts) takes it, without BullMQ: claimed in Postgres in
 * its run's order, worked, and recorded completed under the run's lock with
 * whatever must commit with it. The runner itself is bound to a BullMQ job
 * (its id, attempts and removal), which the seed has none of.
 */
export interface ReplayedPhase<P extends Phase> {
  claimReads?: ClaimReads;
  process: (run: RunRow, reads: unknown) => Promise<PhaseResult<P>>;
  complete?: (tx: PoolClient, run: RunRow, result: PhaseResult<P>) => Promise<void>;
}

/**
 * Replays a phase unless it already completed: a seed interrupted in the
 * middle of the history takes up the next phase when it is run again.
 * Anything unexpected stops the seed, leaving the run as it is.
 */
export async function replayPhase<P extends Phase>(pool: Pool, runId: string, phase: P, step: ReplayedPhase<P>): Promise<void> {
  const done = (await getPhases(pool, runId)).some((p) => p.phase === phase && p.state === 'completed');
  if (done) return;
  const claimed = await claimPhase(pool, runId, phase, step.claimReads);
  if (!claimed?.started) {
    throw new CutterError('DEMO_HISTORY_BROKEN', `demo history run ${runId} could not begin ${phase} (it is ${claimed?.run.status ?? 'gone'}): seed a fresh database`);
  }
  const result = await step.process(claimed.run, claimed.reads);
  await withTransaction(pool, async (tx) => {
    await lockRun(tx, runId);
    await completePhase(tx, runId, phase, result);
    await step.complete?.(tx, claimed.run, result);
  });
}
