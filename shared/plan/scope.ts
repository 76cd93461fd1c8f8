import type { Pool, PoolClient } from '../db/pool.js';

/**
 * What a plan would change, as an allowance sees it (the unit count and the
 * transition kinds, `revise` included), and the one check of a scope against
 * an allowance: the target's (C6, at cutplan and again in execute) and a
 * signed SG_1 approval's each say what they call a refusal.
 */

export interface PlanScope {
  unitCount: number;
  /** Code-point order, `revise` last: the order signers and refusals see. */
  transitions: string[];
}

export interface Allowance {
  maxUnits: number;
  transitions: readonly string[];
}

/** How a scope goes beyond an allowance; null when it is within it. */
export interface AllowanceExcess {
  /** The unit count, when it is over maxUnits. */
  units: number | null;
  /** The transition kinds the allowance does not list. */
  transitions: string[];
}

/** The one allowance check: null when the scope is within the allowance, otherwise what exceeds it. */
export function allowanceExcess(scope: PlanScope, allowance: Allowance): AllowanceExcess | null {
  const units = scope.unitCount > allowance.maxUnits ? scope.unitCount : null;
  const transitions = scope.transitions.filter((t) => !allowance.transitions.includes(t));
  return units === null && transitions.length === 0 ? null : { units, transitions };
}

/** The scope a change set's summary states (cutplan writes it from the items; execute counts the items again). */
export function scopeOfSummary(summary: { unit_count: number; by_transition: Record<string, number> }): PlanScope {
  const kinds = new Set(Object.keys(summary.by_transition));
  const revise = kinds.delete('revise');
  return { unitCount: summary.unit_count, transitions: orderedTransitions(kinds, revise) };
}

/**
 * Unit count and transition kinds of a run's plan, counted from its items.
 * One grouped pass (a handful of groups, hashed) rather than a DISTINCT
 * aggregate, which sorts every item's transition.
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

function orderedTransitions(kinds: Set<string>, revise: boolean): string[] {
  const transitions = [...kinds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (revise) transitions.push('revise');
  return transitions;
}
