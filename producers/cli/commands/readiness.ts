import { Option, type Command } from 'commander';
import { collectReadiness } from '../../../shared/readiness/collect.js';
import { renderReadinessJson } from '../../../shared/readiness/render-json.js';
import { renderReadinessMarkdown } from '../../../shared/readiness/render-md.js';
import { createRedis } from '../../../shared/redis.js';
import { buildRunFlow } from '../../flow/tree.js';
import type { CliContext } from '../context.js';

/**
 * `cutter readiness [--target T] [--run RUN_ID] [--snapshot FILE] [--baseline NAME] [--format md|json]`:
 * the readiness report, writing nothing. Exit 0 when g8 is PASS (whether or
 * not a live run is ready: see ready_for_live_run), 1 when it FAILs, 2 for
 * bad input (unknown run or baseline, missing snapshot file, bad --format).
 */
export function registerReadinessCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('readiness')
    .description('are we ready for a live run, and if not, what is missing and whose move is it; writes nothing')
    .option('--target <name>', 'the target of the live run (default: the run\'s)')
    .option('--run <run_id>', 'a live run to check, e.g. one awaiting approval')
    .option('--snapshot <file>', 'the snapshot to check C5 and C6 against (parsed, never staged)')
    .option('--baseline <name>', 'compare the database with this recorded G0 baseline (cutter baseline record) instead of only before and after the check')
    .addOption(new Option('--format <format>', 'the report as').choices(['md', 'json']).default('md'))
    .option('--json', 'the same as --format json')
    .action(async (opts: { target?: string; run?: string; snapshot?: string; baseline?: string; format: 'md' | 'json'; json?: boolean }) => {
      const format = opts.json ? 'json' : opts.format;
      const c = ctx();
      const redis = createRedis(c.cfg.REDIS_URL);
      // A Redis that is down is reported in the readiness report, not as an unhandled event.
      redis.on('error', () => undefined);
      try {
        const report = await collectReadiness(
          { cfg: c.cfg, pool: c.db(), redis, buildFlow: buildRunFlow },
          { target: opts.target, runId: opts.run, snapshot: opts.snapshot, baseline: opts.baseline },
        );
        process.stdout.write(format === 'json' ? renderReadinessJson(report) : renderReadinessMarkdown(report));
        if (report.g8 === 'FAIL') process.exitCode = 1;
      } finally {
        redis.disconnect();
      }
    });
}
