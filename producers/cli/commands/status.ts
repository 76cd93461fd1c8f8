import type { Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import type { DeliveryState } from '../../../shared/notify/store.js';
import { getRun } from '../../../shared/runs/store.js';
import { endedUnsuccessful, hasEnded } from '../../../shared/runs/status.js';
import { runView } from '../../../shared/runs/view.js';
import { type CliContext, out, outJson } from '../context.js';
import { followRun, phaseLine } from '../follow.js';

/** "3 delivered, 1 pending": the run's webhook deliveries by state, in a fixed order. */
export function notificationCounts(deliveries: readonly { state: DeliveryState }[]): string {
  const order: DeliveryState[] = ['delivered', 'pending', 'failed', 'disabled'];
  return order
    .map((state) => [state, deliveries.filter((d) => d.state === state).length] as const)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
}

/** `cutter status RUN_ID`: the run phase by phase; exit 0, 1 failed, 2 unknown. */
export function registerStatusCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('status')
    .argument('<run_id>')
    .description('the run, phase by phase')
    .option('--json', 'print the run object')
    .option('--follow', 'keep following until the run ends')
    .option('--report', 'print the stored markdown report')
    .action(async (runId: string, opts: { json?: boolean; follow?: boolean; report?: boolean }) => {
      const pool = ctx().db();
      let view = await runView(pool, runId);
      if (!view) throw new CutterError('RUN_UNKNOWN', `no run ${runId}`, { kind: 'bad_input' });
      if (opts.follow && !hasEnded(view.status)) {
        const print = opts.json ? (line: string) => process.stderr.write(`${line}\n`) : out;
        view = await followRun(pool, runId, { print, until: () => false });
      }
      if (opts.json) outJson(view);
      else if (opts.report) out((await getRun(pool, runId))?.report ?? '(no report yet)');
      else {
        out(`run ${view.run_id}  target ${view.target}  mode ${view.mode}  status ${view.status}  verdict ${view.verdict ?? '-'}`);
        if (view.revert_of) out(`revert of ${view.revert_of}${view.revert_skipped?.count ? `  skipped ${view.revert_skipped.count} changed since` : ''}`);
        if (view.plan) out(`plan ${view.plan.plan_sha256}  units ${view.plan.unit_count}`);
        for (const p of view.phases) out(phaseLine(p));
        if (view.error) out(`${view.failed_phase ? `failed in ${view.failed_phase}` : view.status}: ${view.error.code}: ${view.error.message}`);
        if (view.notifications.length) out(`notifications ${notificationCounts(view.notifications)}`);
      }
      process.exitCode = endedUnsuccessful(view.status) ? 1 : 0;
    });
}
