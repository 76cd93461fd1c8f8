import type { Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import { PHASES, type Phase } from '../../../shared/jobs/catalog.js';
import { logger } from '../../../shared/logger.js';
import { startFleet } from '../../../workers/fleet.js';
import type { CliContext } from '../context.js';

/** Parses --phases a,b against the catalog. */
export function parsePhases(list: string | undefined): Phase[] {
  if (!list) return [...PHASES];
  const phases = list.split(',').map((p) => p.trim()).filter(Boolean);
  const unknown = phases.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length || phases.length === 0) {
    throw new CutterError('PHASES_INVALID', `--phases takes a comma list of ${PHASES.join(', ')} (unknown: ${unknown.join(', ') || 'none given'})`, { kind: 'bad_input' });
  }
  return phases as Phase[];
}

/** `cutter worker [--phases a,b]`: serve phase queues until SIGTERM/SIGINT, then finish running jobs and exit. */
export function registerWorkerCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('worker')
    .description('start a worker process for some or all phases')
    .option('--phases <list>', `comma list of ${PHASES.join(',')}`)
    .action(async (opts: { phases?: string }) => {
      const phases = parsePhases(opts.phases);
      const log = logger();
      const fleet = await startFleet({ cfg: ctx().cfg, log, phases });
      process.stdout.write(`worker ready: ${phases.join(', ')}\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'shutting down: finishing running jobs');
          resolve();
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      await fleet.close();
    });
}
