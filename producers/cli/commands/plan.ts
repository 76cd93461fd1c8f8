import { Option, type Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import { previewPlan, type PlanPreview } from '../../../shared/plan/preview.js';
import { formatCriterion } from '../../../shared/targets/criteria.js';
import { type CliContext, out, outJson } from '../context.js';
import { wholeNumber } from '../options.js';
import { registerPlanReviewCommands } from './plan-review.js';

const counts = (o: Record<string, number>) => Object.entries(o).map(([k, n]) => `${k} ${n}`).join(', ') || '(none)';

/** The --json object: the plan summary keys, the target and the criteria (null plan fields when refused). */
function previewJson(p: PlanPreview): Record<string, unknown> {
  return {
    ok: p.error === null,
    target: p.target,
    corpus: p.corpus,
    mode: p.mode,
    plan_sha256: p.plan?.plan_sha256 ?? null,
    unit_count: p.plan?.unit_count ?? null,
    by_op: p.plan?.by_op ?? null,
    by_transition: p.plan?.by_transition ?? null,
    criteria: p.criteria,
    snapshot: p.snapshot,
    error: p.error,
  };
}

/**
 * `cutter plan --target T --snapshot FILE`: the plan and its hash, writing
 * nothing; exit 0 / 1 refused / 2 bad input. Its subcommands `show` and
 * `hash` review a run's frozen plan (plan-review.ts).
 */
export function registerPlanCommand(program: Command, ctx: () => CliContext): void {
  const plan: Command = program
    .command('plan')
    .description('the plan summary and plan_sha256 for a snapshot, writing and enqueuing nothing; `plan show` / `plan hash` review a run\'s plan')
    // Checked in the action, not as requiredOption: commander checks a parent's
    // mandatory options for its subcommands too, and `plan show` takes neither.
    .option('--target <name>', 'registered target (required)')
    .option('--snapshot <file>', 'NDJSON or JSON array snapshot (required)')
    .addOption(new Option('--mode <mode>', 'judge C3 for a live or a dry run').choices(['live', 'dry']).default('live'))
    .option('--max-errors <n>', 'snapshot issues to list before stopping', wholeNumber(1, 10_000), 20)
    .option('--json', 'print one JSON object');
  plan.action(async (opts: { target?: string; snapshot?: string; mode: 'live' | 'dry'; maxErrors: number; json?: boolean }) => {
    // The same error, and exit 2, as commander's own check of a required option.
    if (opts.target === undefined) plan.error("error: required option '--target <name>' not specified");
    if (opts.snapshot === undefined) plan.error("error: required option '--snapshot <file>' not specified");
    const { maxErrors } = opts;
    const c = ctx();
    const p = await previewPlan(c.db(), { target: opts.target, path: opts.snapshot, mode: opts.mode, operator: c.cfg.CUTTER_OPERATOR, maxErrors });
    if (opts.json) outJson(previewJson(p));
    else {
      out(`plan for target ${p.target} (corpus ${p.corpus}), mode ${p.mode}; nothing is written`);
      for (const criterion of p.criteria) out(formatCriterion(criterion));
      if (p.plan) {
        out(`plan_sha256    ${p.plan.plan_sha256}`);
        out(`unit_count     ${p.plan.unit_count}`);
        out(`by_op          ${counts(p.plan.by_op)}`);
        out(`by_transition  ${counts(p.plan.by_transition)}`);
      }
    }
    if (p.error) throw new CutterError(p.error.code, p.error.message, { kind: p.error.kind });
  });
  registerPlanReviewCommands(plan, ctx);
}
