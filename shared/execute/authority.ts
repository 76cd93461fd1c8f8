import { recheckApprovals, type SovereignPolicy } from '../approval/recheck.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { getTarget } from '../targets/registry.js';

/** What the plan would do, as counted from its items in Postgres. */
export interface PlanScope {
  unitCount: number;
  transitions: string[];
}

/** The run, its frozen change set, and the scope of its items — re-read from Postgres, never from the job. */
export interface ExecutionAuthority {
  runId: string;
  mode: 'dry' | 'live';
  corpus: string;
  operator: string;
  planSha256: string;
  scope: PlanScope;
}

/**
 * Re-derives execute's authority inside its transaction: the run exists and
 * is in flight, its change set exists and still hashes to what was frozen,
 * and the plan is within the target's allowance. A live run also needs the
 * approvals its gate consumed, re-verified, with each signed allowance
 * covering this plan.
 */
export async function loadExecutionAuthority(
  client: PoolClient,
  runId: string,
  recomputePlanSha256: (client: PoolClient, runId: string) => Promise<string>,
  sovereign: SovereignPolicy,
): Promise<ExecutionAuthority> {
  const run = await client.query<{ mode: 'dry' | 'live'; status: string; corpus: string; target: string; operator: string }>(
    'SELECT mode, status, corpus, target, operator FROM cutter_governance.run WHERE run_id = $1 FOR SHARE',
    [runId],
  );
  const row = run.rows[0];
  if (!row) throw new CutterError('RUN_UNKNOWN', `no run ${runId}: execute did nothing`);
  if (row.status !== 'running') {
    throw new CutterError('RUN_NOT_RUNNING', `run ${runId} is ${row.status}, not running: execute did nothing`);
  }
  const set = await client.query<{ plan_sha256: string; corpus: string }>(
    'SELECT plan_sha256, corpus FROM cutter_governance.cut_change_set WHERE run_id = $1',
    [runId],
  );
  const plan = set.rows[0];
  if (!plan) throw new CutterError('PLAN_MISSING', `run ${runId} has no change set: execute did nothing`);
  if (plan.corpus !== row.corpus) throw new CutterError('PLAN_MISMATCH', `run ${runId}: change set corpus ≠ run corpus`);
  const recomputed = await recomputePlanSha256(client, runId);
  if (recomputed !== plan.plan_sha256) {
    throw new CutterError('PLAN_TAMPERED', `run ${runId}: the plan items hash to ${recomputed}, not the frozen ${plan.plan_sha256}`);
  }
  const scope = await planScope(client, runId);
  const target = await getTarget(client, row.target);
  if (!target) throw new CutterError('TARGET_UNKNOWN', `target ${row.target} is no longer registered`);
  checkAllowance(scope, { maxUnits: target.maxUnits, transitions: target.allowedTransitions }, `target ${target.name}`);
  if (row.mode === 'live') {
    await recheckApprovals(client, { runId, target: row.target, operator: row.operator, planSha256: plan.plan_sha256, scope }, sovereign);
  }
  return { runId, mode: row.mode, corpus: row.corpus, operator: row.operator, planSha256: plan.plan_sha256, scope };
}

/**
 * Unit count and transition kinds ('revise' included, last) of a run's plan.
 * One grouped pass (a handful of groups, hashed) rather than a DISTINCT
 * aggregate, which sorted every item's transition (40 ms of backend CPU
 * against 10 on a 100,000-item plan). The kinds come back in byte order.
 */
export async function planScope(client: Pool | PoolClient, runId: string): Promise<PlanScope> {
  const { rows } = await client.query<{ transition: string | null; revise: boolean; n: number }>(
    `SELECT transition, op IN ('revise', 'revise+transition') AS revise, count(*)::int AS n
       FROM cutter_governance.cut_change_item WHERE run_id = $1
      GROUP BY 1, 2`,
    [runId],
  );
  const kinds = new Set<string>();
  let unitCount = 0;
  for (const r of rows) {
    unitCount += r.n;
    if (r.transition !== null) kinds.add(r.transition);
  }
  return { unitCount, transitions: orderedTransitions(kinds, rows.some((r) => r.revise)) };
}

/**
 * The same scope as planScope, read from the change set's summary instead of
 * counted from the items: cutplan writes unit_count and by_transition (whose
 * keys are the items' transitions, plus `revise` for any revision) from the
 * items, in the plan's own transaction. The approval path reads it on every
 * POST and gate wake, where counting a million items took 0.5 s each time;
 * execute still counts the items themselves, so a summary that disagreed with
 * them would be refused there.
 */
export function scopeOfSummary(unitCount: number, byTransition: Record<string, number>): PlanScope {
  const kinds = new Set(Object.keys(byTransition));
  const revise = kinds.delete('revise');
  return { unitCount, transitions: orderedTransitions(kinds, revise) };
}

/** Transitions in code-point order, `revise` last: the order signers and refusals see. */
function orderedTransitions(kinds: Set<string>, revise: boolean): string[] {
  const transitions = [...kinds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (revise) transitions.push('revise');
  return transitions;
}

/** Refuses a plan larger than, or with transitions outside, an allowance. */
export function checkAllowance(scope: PlanScope, allowance: { maxUnits: number; transitions: string[] }, source: string): void {
  if (scope.unitCount > allowance.maxUnits) {
    throw new CutterError('ALLOWANCE_EXCEEDED', `the plan changes ${scope.unitCount} units; ${source} allows at most ${allowance.maxUnits}`);
  }
  const outside = scope.transitions.filter((t) => !allowance.transitions.includes(t));
  if (outside.length) {
    throw new CutterError('ALLOWANCE_EXCEEDED', `the plan uses ${outside.join(', ')}, which ${source} does not allow`);
  }
}
