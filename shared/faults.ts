import type { Config } from './config.js';

export type FaultPoint = 'execute.before-commit' | 'execute.after-commit';

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
