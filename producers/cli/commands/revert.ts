import { Option, type Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import { DEFAULT_APPROVAL_WINDOW_S } from '../../../shared/jobs/catalog.js';
import { describeDrift } from '../../../shared/revert/judge.js';
import { endedUnsuccessful } from '../../../shared/runs/status.js';
import type { RunView } from '../../../shared/runs/view.js';
import { enqueueRevert } from '../../flow/enqueue-revert.js';
import { type CliContext, out, outJson } from '../context.js';
import { parseDurationSeconds } from '../duration.js';
import { followRun } from '../follow.js';
import { connectRedis, requirePostgres, requireWorkers } from '../services.js';
import { printRunOutcome } from './run.js';

interface RevertOptions {
  mode: 'dry' | 'live';
  skipDrifted?: boolean;
  follow?: boolean;
  json?: boolean;
  allowNoWorkers?: boolean;
  approvalWindow?: string;
}

/**
 * `cutter revert RUN_ID`: enqueue a run whose plan is the inverse of what a
 * live run applied (docs/undo.md), and follow it as `cutter run` does. It
 * goes through every phase, the approval gate included.
 */
export function registerRevertCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('revert')
    .argument('<run_id>', 'the live run that succeeded whose changes to undo')
    .description('enqueue a run that undoes what a live run applied (a governed compensating run)')
    .addOption(new Option('--mode <mode>', 'dry or live').choices(['dry', 'live']).makeOptionMandatory())
    .option('--skip-drifted', 'leave out (and list as skipped) the units changed after that run, instead of refusing')
    .option('--follow', 'live: keep following past the SG_1 pause to the end')
    .option('--json', 'print one JSON object (the run) on stdout')
    .option('--approval-window <duration>', 'how long the gate waits for approval, e.g. 12h (default 72h)')
    .option('--allow-no-workers', 'enqueue even when a phase queue has no live worker (the run waits for one)')
    .action(async (revertOf: string, opts: RevertOptions) => {
      const windowS = opts.approvalWindow ? parseDurationSeconds(opts.approvalWindow, '--approval-window') : DEFAULT_APPROVAL_WINDOW_S;
      if (windowS > DEFAULT_APPROVAL_WINDOW_S) throw new CutterError('DURATION_INVALID', '--approval-window may be at most 72h', { kind: 'bad_input' });
      const c = ctx();
      await requirePostgres(c.db(), c.cfg);
      const redis = await connectRedis(c.cfg);
      let view: RunView;
      try {
        if (!opts.allowNoWorkers) await requireWorkers(redis, c.cfg, opts.mode);
        const enqueued = await enqueueRevert(
          { pool: c.db(), redis, prefix: c.cfg.CUTTER_QUEUE_PREFIX },
          { revertOf, mode: opts.mode, skipDrifted: Boolean(opts.skipDrifted), operator: c.cfg.CUTTER_OPERATOR, approvalWindowS: windowS },
        );
        const print = opts.json ? (line: string) => process.stderr.write(`${line}\n`) : out;
        const reverting = enqueued.items - enqueued.drifted.length;
        print(`enqueued ${opts.mode} run ${enqueued.runId}: revert of run ${revertOf} (${reverting} of its ${enqueued.items} unit(s) back as they were before it)`);
        if (enqueued.drifted.length) print(`skipped (changed after run ${revertOf}): ${describeDrift(enqueued.drifted)}`);
        const stopAtGate = opts.mode === 'live' && !opts.follow;
        view = await followRun(c.db(), enqueued.runId, { print, until: (v) => stopAtGate && v.status === 'awaiting_approval' });
      } finally {
        redis.disconnect();
      }
      if (opts.json) outJson(view);
      else printRunOutcome(view);
      process.exitCode = endedUnsuccessful(view.status) ? 1 : 0;
    });
}
