import type { Blocker, CriterionRow, DbStateRow, Owner, PackageResult, Readiness, ReadinessScope } from './types.js';

/**
 * The verdict, decided in one place: FAIL when the check could not be
 * completed or the state it guards changed while it ran (then it proves
 * nothing), READY when no blocking item is open, PASS otherwise — the check
 * ran, changed nothing and enumerated what is missing.
 */

/** Numbers the blockers 1..n in package order. */
export function numberBlockers(packages: PackageResult[]): Blocker[] {
  let id = 0;
  return packages.flatMap((p) => p.blockers.map((b) => ({ id: (id += 1), package: p.name, ...b })));
}

const OWNERS: Owner[] = ['operator', 'sovereign', 'workflow_admin'];

export interface VerdictInput {
  startedUtc: string;
  scope: ReadinessScope;
  dbState: DbStateRow[];
  packages: PackageResult[];
  criteria: CriterionRow[];
  failures: string[];
}

/** Assembles the report and decides its verdict and the sentence that explains it. */
export function decideVerdict(input: VerdictInput): Readiness {
  const blockers = numberBlockers(input.packages);
  // A row never re-read (after = null) is explained by its failure, not called CHANGED.
  const changed = input.dbState.filter((r) => !r.unchanged && r.after !== null).map((r) => r.table);
  const open = blockers.filter((b) => b.blocking);
  let verdict: Readiness['verdict'];
  let reason: string;
  if (input.failures.length > 0 || changed.length > 0) {
    verdict = 'FAIL';
    const parts = input.failures.length ? [`the check could not be completed: ${input.failures.join('; ')}`] : [];
    if (changed.length) {
      parts.push(
        `${changed.length} item(s) of the database state CHANGED while the check ran (${changed.join(', ')}): something wrote meanwhile, so the check cannot show it changed nothing; run it again while nothing else is writing`,
      );
    }
    reason = parts.join('; ');
  } else if (open.length === 0) {
    verdict = 'READY';
    const notes = blockers.length ? ` (${blockers.length} non-blocking note(s) below)` : '';
    reason = `nothing is missing: every blocking item is cleared${notes}, and the check changed nothing`;
  } else {
    verdict = 'PASS';
    const byOwner = OWNERS.map((o) => [o, open.filter((b) => b.owner === o).length] as const).filter(([, n]) => n > 0);
    reason = `the check ran to the end and changed nothing; ${open.length} blocking item(s) are missing (${byOwner.map(([o, n]) => `${n} for ${o}`).join(', ')})`;
  }
  return {
    verdict,
    verdict_reason: reason,
    started_utc: input.startedUtc,
    finished_utc: new Date().toISOString(),
    scope: input.scope,
    db_state: input.dbState,
    packages: input.packages.map((p) => ({ name: p.name, runnable: p.runnable, verified: p.verified, checks: p.checks })),
    criteria: input.criteria,
    blockers,
    failures: input.failures,
  };
}
