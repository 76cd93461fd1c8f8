import type { Job } from 'bullmq';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import type { Pool } from '../shared/db/pool.js';
import type { Phase } from '../shared/jobs/catalog.js';
import type { Logger } from '../shared/logger.js';
import type { RunRow } from '../shared/runs/store.js';

/** What every phase processor may use; injected so processors stay plain functions. */
export interface PhaseDeps {
  pool: Pool;
  cfg: Config;
  log: Logger;
  redis: Redis;
  /** One Queue handle per phase, for worker presence and the gate. */
  queues: Record<Phase, Queue>;
}

/** The call of one phase for one run. */
export interface PhaseCall {
  run: RunRow;
  /** Reports progress (bytes, records) to the job and the run's phase row. */
  progress: (progress: Record<string, unknown>) => Promise<void>;
  job: Job;
  token: string | undefined;
  /** approval-gate only: what it read before claiming anything (shared/runs/store.ts peekGate). */
  gateReads?: unknown;
  /** approval-gate only: when that read was taken, in the database's clock. */
  readAt?: Date | undefined;
  /** approval-gate only: the read was the endpoint's handoff, this text; the opening must still find it in Postgres. */
  judged?: string | undefined;
}

/**
 * Marks a summary whose phase completion the processor has already recorded,
 * in the transaction of its own last write (the gate's consumption), so the
 * runner does not record it again in a commit of its own.
 */
export const PHASE_RECORDED: unique symbol = Symbol('phase recorded');

/** A phase's small summary, kept with the run (symbol keys are not stored). */
export type PhaseSummary = Record<string, unknown> & { [PHASE_RECORDED]?: true };

/** A phase processor: (run, deps) → a small summary kept with the run. */
export type PhaseProcessor = (call: PhaseCall, deps: PhaseDeps) => Promise<PhaseSummary>;
