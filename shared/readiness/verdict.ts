import type { Blocker, BaselineState, CriterionRow, DbStateRow, FirstRunStep, Owner, PackageResult, Readiness, ReadinessScope } from './types.js';

/**
 * The verdict block, decided in one place. g8 is the verification itself:
 * PASS when the check ran to the end and the state it guards is as it should
 * be (nothing changed while it ran; equal to the recorded baseline when one
 * is named). Whether a live run may go is a separate line,
 * ready_for_live_run, so a passing check with open blockers never reads as
 * a go.
 */

/** The gap a package's blockers fill when the check does not name one. */
const PACKAGE_GAP: Record<string, string> = {
  'backup runner': 'C7',
  'grant probe': 'GRANTS',
  'target intake': 'C1',
  'command package': 'WORKERS',
  'approval contract': 'SG_1',
  'kill switch': 'SWITCH',
  'Redis durability': 'REDIS',
  'deployed version': 'VERSION',
};

/** Numbers the blockers 1..n in package order, each with its gap. */
export function numberBlockers(packages: PackageResult[]): Blocker[] {
  let id = 0;
  return packages.flatMap((p) => p.blockers.map((b) => ({ ...b, id: (id += 1), package: p.name, gap: b.gap ?? PACKAGE_GAP[p.name] ?? p.name })));
}

/** Section 4: CLOSED/READY (verified, nothing open), PACKAGED (everything it needs is there; part waits on an input or a write), OPEN. */
export function firstRunPath(packages: PackageResult[], blockers: Blocker[]): FirstRunStep[] {
  return packages.map((p) => {
    const open = blockers.filter((b) => b.package === p.name && b.blocking);
    if (open.length) return { package: p.name, state: 'OPEN', note: `${open.length} open: ${open[0]?.form ?? ''}` };
    if (p.runnable === 'YES') return { package: p.name, state: 'CLOSED/READY', note: p.verified };
    return { package: p.name, state: p.runnable === 'SPEC-COMPLETE' ? 'PACKAGED' : 'OPEN', note: p.verified };
  });
}

const OWNERS: Owner[] = ['operator', 'sovereign', 'workflow_admin'];

export interface VerdictInput {
  startedUtc: string;
  scope: ReadinessScope;
  dbState: DbStateRow[];
  baseline: BaselineState | null;
  packages: PackageResult[];
  criteria: CriterionRow[];
  failures: string[];
}

/** Assembles the report: g8 and why, whether a live run may go, and the first run's path. */
export function decideVerdict(input: VerdictInput): Readiness {
  const blockers = numberBlockers(input.packages);
  // A row never re-read (after = null) is explained by its failure, not called CHANGED.
  const changed = input.dbState.filter((r) => !r.unchanged && r.after !== null).map((r) => r.table);
  const drifted = input.baseline?.lines.filter((l) => !l.equal) ?? [];
  const open = blockers.filter((b) => b.blocking);
  const reasons: string[] = [];
  if (input.failures.length) reasons.push(`the check could not be completed: ${input.failures.join('; ')}`);
  if (changed.length) {
    reasons.push(
      `${changed.length} item(s) of the database state CHANGED while the check ran (${changed.join(', ')}): something wrote meanwhile, so the check cannot show it changed nothing; run it again while nothing else is writing`,
    );
  }
  if (drifted.length && input.baseline) {
    reasons.push(`${drifted.length} item(s) differ from baseline ${input.baseline.name} (${drifted.map((l) => l.item).join(', ')}): the database is not in the state that baseline recorded`);
  }
  const g8 = reasons.length === 0 ? 'PASS' : 'FAIL';
  if (g8 === 'PASS') {
    const against = input.baseline ? `every item equals baseline ${input.baseline.name}` : 'it changed nothing';
    const byOwner = OWNERS.map((o) => [o, open.filter((b) => b.owners.includes(o)).length] as const).filter(([, n]) => n > 0);
    reasons.push(
      `the check ran to the end and ${against}; ${open.length ? `${open.length} blocking item(s) are open (${byOwner.map(([o, n]) => `${n} for ${o}`).join(', ')})` : 'nothing blocking is open'}`,
    );
  }
  const switchRow = input.dbState.find((r) => r.table === 'execution_enabled()');
  const switchNow = switchRow?.after ?? switchRow?.before ?? null;
  return {
    g8,
    g8_reason: reasons.join('; '),
    ready_for_live_run: g8 === 'PASS' && open.length === 0 ? 'yes' : `no (${g8 === 'FAIL' ? 'g8 FAIL' : `${open.length} open`})`,
    // UNKNOWN when the state could not be read (both times): nothing then shows it is unchanged.
    production_mutation: changed.length || drifted.length ? 'CHANGED' : input.dbState.length === 0 || input.dbState.some((r) => r.after === null) ? 'UNKNOWN' : 'NONE',
    execution_enabled: switchNow && 'value' in switchNow ? switchNow.value : null,
    started_utc: input.startedUtc,
    finished_utc: new Date().toISOString(),
    scope: input.scope,
    db_state: input.dbState,
    baseline: input.baseline,
    packages: input.packages.map((p) => ({ name: p.name, runnable: p.runnable, verified: p.verified, checks: p.checks })),
    criteria: input.criteria,
    blockers,
    first_run_path: firstRunPath(input.packages, blockers),
    failures: input.failures,
  };
}
