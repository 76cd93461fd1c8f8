import type { Job, Queue } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import type { Config } from '../shared/config.js';
import type { Pool, PoolClient } from '../shared/db/pool.js';
import type { Phase } from '../shared/jobs/catalog.js';
import type { PhaseProgress, PhaseResult } from '../shared/jobs/results.js';
import type { Logger } from '../shared/logger.js';
import type { ClaimReads, RunRow } from '../shared/runs/store.js';

/** What every phase processor may use; injected so processors stay plain functions. */
export interface PhaseDeps {
  pool: Pool;
  cfg: Config;
  log: Logger;
  redis: RedisClient;
  /** One Queue handle per phase, for worker presence. */
  queues: Record<Phase, Queue>;
}

/** The call of one phase for one run. */
export interface PhaseCall {
  /** The run as the claim left it (running, in this phase). */
  run: RunRow;
  /** What the phase's claimReads function returned for the run, read under the run's lock in the claim; null without one. */
  reads: unknown;
  /** Reports progress (bytes, records) to the job and the run's phase row. */
  progress: (progress: PhaseProgress) => Promise<void>;
  job: Job;
}

/** A phase processor: (the claimed run, deps) → its result, which the runner stores through the phase's schema. */
export type PhaseProcessor<P extends Phase> = (call: PhaseCall, deps: PhaseDeps) => Promise<PhaseResult<P>>;

/**
 * Everything the phase runner needs to know about one phase, declared in the
 * phase's own folder: the runner itself never names a phase.
 */
export interface PhaseWorker<P extends Phase> {
  process: PhaseProcessor<P>;
  /** A read taken in the claim's statement, after the run's row lock (see claimPhase). */
  claimReads?: ClaimReads;
  /**
   * Writes that belong in the commit that records the phase completed (the
   * run's row lock is held): what must become visible together with it.
   */
  complete?: (tx: PoolClient, run: RunRow, result: PhaseResult<P>) => Promise<void>;
}

export type PhaseWorkers = { [P in Phase]: PhaseWorker<P> };
