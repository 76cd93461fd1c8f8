import { recheckApprovals, type SovereignPolicy } from '../approval/recheck.js';
import type { PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { allowanceExcess, planScope, type PlanScope } from '../plan/scope.js';
import { runAllowance } from '../plan/run-allowance.js';
import { requireTarget } from '../targets/registry.js';

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
 * and the plan is within the target's allowance (inverted for a revert, as
 * at cutplan: shared/plan/run-allowance.ts). A live run also needs the
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
  const target = await requireTarget(client, row.target);
  const allowance = await runAllowance(client, runId, target);
  const excess = allowanceExcess(scope, allowance);
  if (excess) {
    const over: string[] = [];
    if (excess.units !== null) over.push(`changes ${excess.units} units (at most ${target.maxUnits})`);
    if (excess.transitions.length) over.push(`uses ${excess.transitions.join(', ')}`);
    throw new CutterError('ALLOWANCE_EXCEEDED', `the plan ${over.join(' and ')}, beyond what target ${target.name} allows (${allowance.label}): execute did nothing`);
  }
  if (row.mode === 'live') {
    await recheckApprovals(client, { runId, target: row.target, operator: row.operator, planSha256: plan.plan_sha256, scope }, sovereign);
  }
  return { runId, mode: row.mode, corpus: row.corpus, operator: row.operator, planSha256: plan.plan_sha256, scope };
}
