import { setTimeout as sleep } from 'node:timers/promises';
import { Job, type Queue } from 'bullmq';
import { jobId } from '../jobs/catalog.js';

/**
 * Promotes a run's gate job out of `delayed`. The gate only becomes delayed
 * once cutplan's job has completed, a few milliseconds after the run shows
 * awaiting_approval; promote() throws before that (FIELD-NOTES). So this
 * waits briefly for the delayed state; if the wait runs out the approvals
 * are still recorded, and the release sweeper (or the gate's own wake)
 * picks them up.
 */

/**
 * released: this call promoted it, or it had already left `delayed` for a worker.
 * pending: still waiting for cutplan's job to complete; retry later.
 * gone: no such job, or it failed: there is nothing to release.
 */
export type ReleaseOutcome = 'released' | 'pending' | 'gone';

const AFTER_DELAYED = new Set(['waiting', 'prioritized', 'active', 'completed']);

/** The gate job id of a run, in the approval-gate queue. */
export function gateJobId(runId: string): string {
  return jobId(runId, 'approval-gate');
}

/** Promotes the gate of runId, waiting up to waitMs for it to become delayed. */
export async function releaseGate(gateQueue: Queue, runId: string, options: { waitMs: number; stepMs?: number }): Promise<ReleaseOutcome> {
  const deadline = Date.now() + options.waitMs;
  // A handle on the job by its id alone: promote and getState act on the id (a missing job is 'unknown').
  const job = new Job(gateQueue, 'approval-gate', {}, {}, gateJobId(runId));
  for (;;) {
    try {
      // The common case first: the gate is delayed and this promotes it.
      await job.promote();
      return 'released';
    } catch (err) {
      const state = await job.getState();
      if (AFTER_DELAYED.has(state)) return 'released'; // someone else promoted it, or its window ended
      if (state === 'delayed') {
        // It was not delayed a moment ago; if promote keeps failing, say why.
        if (Date.now() >= deadline) throw err;
        continue;
      }
      if (state !== 'waiting-children') return 'gone';
    }
    if (Date.now() >= deadline) return 'pending';
    await sleep(options.stepMs ?? 20);
  }
}
