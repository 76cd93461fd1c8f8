import type { Pool, PoolClient } from '../db/pool.js';
import type { Allowance } from './scope.js';
import type { TargetRecord } from '../targets/registry.js';
import { inverseTransition } from '../units/lifecycle.js';

/**
 * C6 for a revert (DESIGN §2): its plan is judged against the target's
 * allowed_transitions inverted (a target that allows draft->enacted lets a
 * revert take enacted->draft) and the same max_units. A revert of a revert is
 * judged against those inverted once more, and so on: each level undoes the
 * one below it. One function for cutplan and for execute's second look.
 */

/** The revert levels above a run: 0 for a run of a snapshot, 1 for a revert, 2 for the revert of a revert, … */
export async function revertDepth(db: Pool | PoolClient, runId: string): Promise<number> {
  // revert_of names an earlier run and never changes (trigger run_revert_of), so the chain ends; the bound is a belt.
  const { rows } = await db.query<{ depth: number }>(
    `WITH RECURSIVE chain (revert_of, depth) AS (
       SELECT revert_of, 0 FROM cutter_governance.run WHERE run_id = $1
       UNION ALL
       SELECT r.revert_of, c.depth + 1 FROM cutter_governance.run r JOIN chain c ON r.run_id = c.revert_of WHERE c.depth < 10000
     ) SELECT max(depth)::int AS depth FROM chain`,
    [runId],
  );
  return rows[0]?.depth ?? 0;
}

/** The target's allowance inverted `depth` times (code-point order, no repeats). */
export function allowanceAtDepth(target: Pick<TargetRecord, 'maxUnits' | 'allowedTransitions'>, depth: number): Allowance {
  let kinds: string[] = [...target.allowedTransitions];
  for (let i = 0; i < depth; i += 1) kinds = kinds.map(inverseTransition);
  return { maxUnits: target.maxUnits, transitions: [...new Set(kinds)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) };
}

/** The allowance a run's plan is held to, and how it is named in a refusal. */
export interface RunAllowance extends Allowance {
  depth: number;
  /** "allowed_transitions", or "allowed_transitions inverted" (twice, …) for a revert. */
  label: string;
}

/** What C6 holds the run's plan to: the target's allowance, inverted once per level of revert. */
export async function runAllowance(db: Pool | PoolClient, runId: string, target: Pick<TargetRecord, 'maxUnits' | 'allowedTransitions'>): Promise<RunAllowance> {
  const depth = await revertDepth(db, runId);
  const label = depth === 0 ? 'allowed_transitions' : `allowed_transitions inverted${depth > 1 ? ` ${depth} times (a revert of a revert)` : ' (a revert)'}`;
  return { ...allowanceAtDepth(target, depth), depth, label };
}
