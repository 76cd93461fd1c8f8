import { setTimeout as sleep } from 'node:timers/promises';
import { Job, type Queue } from 'bullmq';
import { jobId } from '../jobs/catalog.js';
import { leaveHandoff } from './handoff.js';

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

/**
 * Promotes the gate of runId, waiting up to waitMs for it to become delayed;
 * handoff: the run's gate_handoff as the completing approval's store
 * answered it, left for the gate first (shared/approval/handoff.ts).
 */
export async function releaseGate(gateQueue: Queue, runId: string, options: { waitMs: number; stepMs?: number; handoff?: string }): Promise<ReleaseOutcome> {
  const left = options.handoff === undefined ? null : leaveHandoff(await gateQueue.getBackend().client, gateQueue, runId, options.handoff);
  try {
    return await promoteWhenDelayed(gateQueue, runId, options);
  } finally {
    await left;
  }
}

async function promoteWhenDelayed(gateQueue: Queue, runId: string, options: { waitMs: number; stepMs?: number }): Promise<ReleaseOutcome> {
  const deadline = Date.now() + options.waitMs;
  // A handle on the job by its id alone: promote and getState act on the id,
  // so the job's hash is not read first (a Redis round trip fewer on the path
  // from the completing approval to execute). A missing job is 'unknown'.
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
