import type { Config } from './config.js';
import { PHASES, type Phase } from './jobs/catalog.js';

/**
 * Where in a phase a crash test may kill its worker: before the phase's side
 * effect, in the middle of it (for execute: the change applied, the
 * transaction still open), and after it but before the job completes.
 */
export const FAULT_MOMENTS = ['before', 'middle', 'after'] as const;
export type FaultPoint = `${Phase}.${(typeof FAULT_MOMENTS)[number]}`;
export const FAULT_POINTS: readonly FaultPoint[] = PHASES.flatMap((p) => FAULT_MOMENTS.map((m) => `${p}.${m}` as const));

/**
 * A named point where a crash test kills the process. When CUTTER_FAULT names
 * this point the process announces it on stderr and stops there for good;
 * otherwise this costs one comparison.
 */
export async function faultPoint(cfg: Config, point: FaultPoint): Promise<void> {
  if (cfg.CUTTER_FAULT !== point) return;
  process.stderr.write(`cutter-fault: paused at ${point}\n`);
  await new Promise(() => undefined);
}
