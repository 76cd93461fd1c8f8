import { z } from 'zod';

/**
 * The job catalog: each phase's queue name, job data shape and retry policy
 * in one place that the flow builder and the workers both import.
 */

export const PHASES = [
  'precheck',
  'grant-probe',
  'discover',
  'cutplan',
  'approval-gate',
  'backup',
  'execute',
  'verify',
] as const;

export type Phase = (typeof PHASES)[number];

/** True when name is one of the phases (a phase row's name, as Postgres returns it). */
export function isPhase(name: string): name is Phase {
  return (PHASES as readonly string[]).includes(name);
}

/** The phases a run of this mode goes through, in order (a dry run has no gate). */
export function phasesFor(mode: RunMode): Phase[] {
  return mode === 'live' ? [...PHASES] : PHASES.filter((p) => p !== 'approval-gate');
}

export type RunMode = 'dry' | 'live';

/** Every phase job carries the run id and nothing else: authority and data live in Postgres. */
export const phaseJobData = z.object({ runId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) }).strict();
export type PhaseJobData = z.infer<typeof phaseJobData>;

/** Job ids may not contain ':' (BullMQ); `${runId}.${phase}` makes re-adds idempotent. */
export function jobId(runId: string, phase: Phase): string {
  return `${runId}.${phase}`;
}

export interface PhasePolicy {
  attempts: number;
  /** Exponential backoff base, ms. */
  backoffMs: number;
}

/** Transient faults (a connection drop) are retried; CutterErrors are not (see errors.ts). */
export const PHASE_POLICY: Record<Phase, PhasePolicy> = {
  precheck: { attempts: 3, backoffMs: 500 },
  'grant-probe': { attempts: 3, backoffMs: 500 },
  discover: { attempts: 3, backoffMs: 500 },
  cutplan: { attempts: 3, backoffMs: 500 },
  'approval-gate': { attempts: 1, backoffMs: 0 },
  backup: { attempts: 2, backoffMs: 1000 },
  execute: { attempts: 3, backoffMs: 1000 },
  verify: { attempts: 3, backoffMs: 500 },
};

/**
 * Worker lock tuning: a crashed worker's job is re-run by another worker
 * after about lockDuration + stalledInterval (FIELD-NOTES: ~6 s with 5 s / 2 s),
 * not the minute the defaults give.
 */
export const WORKER_LOCKS = { lockDuration: 5000, stalledInterval: 2000, maxStalledCount: 2 } as const;

/** Completed jobs are kept a while so a re-added flow does not re-run finished phases. */
export const KEEP_COMPLETED = { age: 7 * 24 * 3600 } as const;
export const KEEP_FAILED = { age: 30 * 24 * 3600 } as const;

/** Default approval window: 72 h (DESIGN §3). */
export const DEFAULT_APPROVAL_WINDOW_S = 72 * 3600;
