import type { Queue } from 'bullmq';
import { jobId, PHASES, type Phase } from './catalog.js';

/**
 * Takes a run's jobs out of the phase queues once the run has ended, so no
 * job of it is left waiting, delayed (the gate) or waiting for children.
 *
 * Measured on BullMQ 6.7 (docs/stopping-runs.md): removing a job whose
 * parent still exists takes it out of the parent's dependencies, and a
 * parent left with none moves to `wait` and runs; so the jobs go last phase
 * first (the root of the flow first), each without its children, and every
 * job removed has no parent left to wake. An active (locked) job cannot be
 * removed (remove answers 0): it is left to its worker, whose runner finds
 * the run ended when it finishes and removes it then. A failing phase's job
 * fails after its parents are gone, so it keeps its own error and no later
 * phase gets BullMQ's "child ... failed" copy.
 */

/**
 * Removes the run's jobs of every phase after `after` (every phase without
 * it), last phase first; returns the phases whose job was active and stays.
 */
export async function removeRunJobs(queues: Record<Phase, Queue>, runId: string, options: { after?: Phase } = {}): Promise<Phase[]> {
  const first = options.after === undefined ? 0 : PHASES.indexOf(options.after) + 1;
  const active: Phase[] = [];
  for (const phase of PHASES.slice(first).reverse()) {
    // BullMQ's default removes the children too, and refuses all of them if one is active.
    const removed = await queues[phase].remove(jobId(runId, phase), { removeChildren: false });
    if (removed === 0) active.push(phase);
  }
  return active;
}
