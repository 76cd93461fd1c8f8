import type { RedisClient } from '../../shared/redis.js';
import { jobId, PHASES, type Phase } from '../../shared/jobs/catalog.js';
import { openPhaseQueues } from '../../shared/jobs/queues.js';

/** A run's job in one phase queue as Bull Board shows it: its state, and its failedReason when it failed. */
export interface RunJob {
  state: string;
  failedReason?: string;
}

/**
 * Every job a run has in any phase queue, by phase (a phase without a job is
 * absent), read straight from Redis: what an admin sees in Bull Board.
 */
export async function runJobs(redis: RedisClient, prefix: string, runId: string): Promise<Partial<Record<Phase, RunJob>>> {
  const queues = openPhaseQueues(redis, prefix);
  try {
    const found: Partial<Record<Phase, RunJob>> = {};
    for (const phase of PHASES) {
      const job = await queues[phase].getJob(jobId(runId, phase));
      if (!job) continue;
      const state = await job.getState();
      if (state === 'unknown') continue;
      found[phase] = { state, ...(job.failedReason ? { failedReason: job.failedReason } : {}) };
    }
    return found;
  } finally {
    await Promise.all(Object.values(queues).map((q) => q.close()));
  }
}

/** The states in which a job still waits for something: none may be left for an ended run. */
export const PENDING_STATES = ['waiting', 'delayed', 'waiting-children', 'prioritized', 'active'] as const;
