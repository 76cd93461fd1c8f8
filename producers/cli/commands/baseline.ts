import type { Command } from 'commander';
import { DEFAULT_BASELINE_NAME, itemText, recordBaseline } from '../../../shared/readiness/baseline.js';
import { type CliContext, out, outJson } from '../context.js';

/**
 * `cutter baseline record [--name NAME] [--json]`: the G0 baseline that
 * `cutter readiness --baseline NAME` proves the database is still in.
 * Exit 0 recorded / 1 the name is taken / 2 bad name.
 */
export function registerBaselineCommands(program: Command, ctx: () => CliContext): void {
  const baseline = program.command('baseline').description('recorded G0 baselines of the database state');
  baseline
    .command('record')
    .description('record the G0 state (units by state, versions, lifecycle log, change sets, review decisions, verify results, kill switch) under a name, audited')
    .option('--name <name>', 'the baseline name', DEFAULT_BASELINE_NAME)
    .option('--json', 'print the recorded baseline as one JSON object')
    .action(async (opts: { name: string; json?: boolean }) => {
      const c = ctx();
      const recorded = await recordBaseline(c.db(), opts.name, c.cfg.CUTTER_OPERATOR);
      if (opts.json) {
        outJson(recorded);
        return;
      }
      out(`baseline ${recorded.name} recorded ${recorded.recorded_utc} by ${recorded.recorded_by}:`);
      for (const item of recorded.items) out(`  ${itemText(item)}`);
      out(`compare with it: cutter readiness --baseline ${recorded.name}`);
    });
}
