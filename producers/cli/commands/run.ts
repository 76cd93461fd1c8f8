import { Option, type Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import { DEFAULT_APPROVAL_WINDOW_S } from '../../../shared/jobs/catalog.js';
import { endedUnsuccessful } from '../../../shared/runs/status.js';
import type { RunView } from '../../../shared/runs/view.js';
import { enqueueRun } from '../../flow/enqueue.js';
import { type CliContext, out, outJson } from '../context.js';
import { parseDurationSeconds } from '../duration.js';
import { connectRedis, requirePostgres, requireWorkers } from '../services.js';
import { followRun } from '../follow.js';

const MAX_WINDOW_S = DEFAULT_APPROVAL_WINDOW_S; // DESIGN §3: at most 72 h

interface RunOptions {
  target: string;
  snapshot: string;
  mode: 'dry' | 'live';
  follow?: boolean;
  allowNoWorkers?: boolean;
  json?: boolean;
  idempotencyKey?: string;
  approvalWindow?: string;
}

/** `cutter run`: enqueue one run and follow it (DESIGN §4). */
export function registerRunCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('run')
    .description('enqueue one run and show its progress')
    .requiredOption('--target <name>', 'registered target')
    .requiredOption('--snapshot <file>', 'NDJSON or JSON array snapshot')
    .addOption(new Option('--mode <mode>', 'dry or live').choices(['dry', 'live']).makeOptionMandatory())
    .option('--follow', 'live: keep following past the SG_1 pause to the end')
    .option('--json', 'print one JSON object (the run) on stdout')
    .option('--idempotency-key <key>', 'a second enqueue with the same key returns the first run')
    .option('--approval-window <duration>', 'how long the gate waits for approval, e.g. 12h (default 72h)')
    .option('--allow-no-workers', 'enqueue even when a phase queue has no live worker (the run waits for one)')
    .action(async (opts: RunOptions) => {
      const windowS = opts.approvalWindow ? parseDurationSeconds(opts.approvalWindow, '--approval-window') : DEFAULT_APPROVAL_WINDOW_S;
      if (windowS > MAX_WINDOW_S) throw new CutterError('DURATION_INVALID', '--approval-window may be at most 72h', { kind: 'bad_input' });
      const c = ctx();
      // Both services answer and the phases have workers before anything is written.
      await requirePostgres(c.db(), c.cfg);
      const redis = await connectRedis(c.cfg);
      let view: RunView;
      try {
        if (!opts.allowNoWorkers) await requireWorkers(redis, c.cfg, opts.mode);
        const { runId, created } = await enqueueRun(
          { pool: c.db(), redis, prefix: c.cfg.CUTTER_QUEUE_PREFIX },
          {
            target: opts.target,
            snapshotPath: opts.snapshot,
            mode: opts.mode,
            operator: c.cfg.CUTTER_OPERATOR,
            idempotencyKey: opts.idempotencyKey,
            approvalWindowS: windowS,
          },
        );
        const print = opts.json ? (line: string) => process.stderr.write(`${line}\n`) : out;
        print(`${created ? 'enqueued' : 'already enqueued (idempotency key)'} ${opts.mode} run ${runId} for target ${opts.target}`);
        const stopAtGate = opts.mode === 'live' && !opts.follow;
        view = await followRun(c.db(), runId, { print, until: (v) => stopAtGate && v.status === 'awaiting_approval' });
      } finally {
        redis.disconnect();
      }
      if (opts.json) outJson(view);
      else printRunOutcome(view);
      process.exitCode = endedUnsuccessful(view.status) ? 1 : 0;
    });
}

/** The end of `cutter run` (and `cutter revert`): where the run stopped, and what to do next. */
export function printRunOutcome(view: RunView): void {
  out();
  if (view.status === 'awaiting_approval' && view.plan) {
    out(`run ${view.run_id} is paused at SG_1, awaiting approval.`);
    out(`plan_sha256: ${view.plan.plan_sha256}`);
    out(`units: ${view.plan.unit_count}  by op: ${JSON.stringify(view.plan.by_op)}  by transition: ${JSON.stringify(view.plan.by_transition)}`);
    out('to release it, the sovereign signs an SG_1 approval and an EXEC grant for exactly this run and plan:');
    out(`  cutter approval sign --gate SG_1 --run ${view.run_id} --key KEY.pem`);
    out(`  cutter approval sign --gate EXEC --run ${view.run_id} --key KEY.pem`);
    return;
  }
  out(`run ${view.run_id}: ${view.status}, verdict ${view.verdict ?? 'none'}`);
  if (view.error) out(`failed in ${view.failed_phase ?? '?'}: ${view.error.code}: ${view.error.message}`);
  out(`report: cutter status ${view.run_id}  (or GET /runs/${view.run_id}/report)`);
}
