import { CutterError } from '../../shared/errors.js';
import { readVerifiedPlanExport, FIRST_KEYS } from '../../shared/plan/read-export.js';
import { scopeOfSummary } from '../../shared/plan/scope.js';
import { out } from './context.js';

/**
 * What `cutter approval sign` shows of the plan before it signs (its
 * summary and the first keys of each op), and its offline mode: with
 * `--plan-export FILE` the run is read from a verified plan export instead
 * of the board's API, so the machine holding the sovereign key needs no
 * network (docs/plan-review.md).
 */

/** The run as signing needs it (the fields of GET /runs/:runId that sign reads). */
export interface ReviewedRun {
  run_id: string;
  target: string;
  status: string;
  plan: { plan_sha256: string; unit_count: number; by_op: Record<string, number>; by_transition: Record<string, number> } | null;
  approvals: { allowance_needed: { max_units: number; transitions: string[] } } | null;
}

/** A run read from an export, and the first keys of each op found while reading it. */
export interface OfflineRun {
  run: ReviewedRun;
  firstKeys: Record<string, string[]>;
}

/**
 * The run from a plan export, after checking that its items hash to the
 * plan_sha256 its header claims (which is what the document will carry) and
 * that it is the export of the run being signed. Refuses otherwise.
 */
export async function runFromPlanExport(file: string, runId: string): Promise<OfflineRun> {
  const r = await readVerifiedPlanExport(file);
  if (r.header.run_id !== runId) {
    throw new CutterError('PLAN_EXPORT_RUN_MISMATCH', `${file} is the plan of run ${r.header.run_id}, not of --run ${runId}`, { kind: 'bad_input' });
  }
  const plan = { plan_sha256: r.planSha256, unit_count: r.items, by_op: r.byOp, by_transition: r.byTransition };
  const scope = scopeOfSummary(plan);
  return {
    run: {
      run_id: r.header.run_id,
      target: r.header.target,
      // Offline the run's state cannot be seen: the endpoint checks it when the envelope is submitted.
      status: 'offline',
      plan,
      approvals: { allowance_needed: { max_units: scope.unitCount, transitions: scope.transitions } },
    },
    firstKeys: r.firstKeys,
  };
}

/** Fetches the first keys of each op of a run's plan from the plan API. */
export async function fetchFirstKeys(
  runId: string,
  ops: string[],
  get: (path: string) => Promise<{ status: number; json: unknown }>,
): Promise<Record<string, string[]>> {
  const firstKeys: Record<string, string[]> = {};
  for (const op of ops) {
    const { status, json } = await get(`/runs/${encodeURIComponent(runId)}/plan?op=${encodeURIComponent(op)}&limit=${FIRST_KEYS}`);
    if (status !== 200) throw new CutterError('API_ANSWER_INVALID', `the plan API answered HTTP ${status} for run ${runId}, op ${op}`, { kind: 'refused' });
    firstKeys[op] = ((json as { items?: { key: string }[] }).items ?? []).map((i) => i.key);
  }
  return firstKeys;
}

/** Prints the first keys of each op of the plan, and how to see all of it. */
export function showFirstKeys(run: Pick<ReviewedRun, 'run_id' | 'plan'>, firstKeys: Record<string, string[]>, file?: string): void {
  for (const [op, n] of Object.entries(run.plan?.by_op ?? {})) {
    const keys = firstKeys[op] ?? [];
    out(`  ${op} (${n}): ${keys.join(', ')}${n > keys.length ? ', …' : ''}`);
  }
  out(
    file
      ? `offline: ${file} holds exactly this plan (its ${run.plan?.unit_count ?? 0} items hash to its plan_sha256); read it unit by unit before signing`
      : `every unit: cutter plan show ${run.run_id} [--diff]; to sign offline: cutter plan show ${run.run_id} --format ndjson > plan.ndjson, then --plan-export plan.ndjson`,
  );
}
