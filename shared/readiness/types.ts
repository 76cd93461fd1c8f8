import type { CriterionId } from '../targets/criteria.js';

/**
 * The readiness report (DESIGN §4, `cutter readiness`). The report object is
 * the JSON contract itself (snake_case keys), so the markdown and the JSON
 * are two renderings of one value and cannot drift apart.
 */

/** Who has to act to clear a blocker. */
export type Owner = 'operator' | 'sovereign' | 'workflow_admin';

/** YES: exercised read-only and it holds. NO: it does not. SPEC-COMPLETE: everything it needs is present and valid, but part of it could not be exercised without writing or without an input that was not given. */
export type Runnable = 'YES' | 'NO' | 'SPEC-COMPLETE';

/** PASS: ran, changed nothing, listed every missing item. READY: nothing is missing. FAIL: the check could not be completed (or something changed while it ran). */
export type Verdict = 'PASS' | 'READY' | 'FAIL';

/** A blocker as a check finds it; numbered once every check has run. */
export interface BlockerDraft {
  owner: Owner;
  /** The exact thing that clears it. */
  form: string;
  blocking: boolean;
  /** What was found, in a sentence. */
  why: string;
  /** Text that goes with the form (the grant package), or null. */
  attachment: string | null;
}

/** One row of the package runnability table, with the blockers it found. */
export interface PackageResult {
  name: string;
  runnable: Runnable;
  /** What was actually done to decide `runnable`, in a sentence. */
  verified: string;
  /** The individual observations behind `verified`. */
  checks: string[];
  blockers: BlockerDraft[];
  /** Set when the check itself could not be completed: the verdict becomes FAIL. */
  failure: string | null;
}

/** A table fingerprint, or the value of execution_enabled(). */
export type StateValue = { rows: number; hash: string } | { value: boolean };

export interface DbStateRow {
  table: string;
  before: StateValue | null;
  after: StateValue | null;
  unchanged: boolean;
}

export interface CriterionRow {
  id: CriterionId;
  status: 'PASS' | 'FAIL' | 'NOT CHECKED';
  reason: string;
}

export interface PackageRow {
  name: string;
  runnable: Runnable;
  verified: string;
  checks: string[];
}

export interface Blocker extends BlockerDraft {
  id: number;
  /** The package row that found it. */
  package: string;
}

/** What the report was asked about and where it looked. */
export interface ReadinessScope {
  target: string | null;
  corpus: string | null;
  run_id: string | null;
  run_status: string | null;
  plan_sha256: string | null;
  snapshot: string | null;
  operator: string;
  database: string;
  redis: string;
  queue_prefix: string;
}

/** The readiness object of DESIGN §4 (verdict, db_state, packages, blockers) and its context. */
export interface Readiness {
  verdict: Verdict;
  /** One sentence saying why the verdict is what it is. */
  verdict_reason: string;
  started_utc: string;
  finished_utc: string;
  scope: ReadinessScope;
  db_state: DbStateRow[];
  packages: PackageRow[];
  criteria: CriterionRow[];
  blockers: Blocker[];
  /** Why the check could not be completed; empty unless the verdict is FAIL for that reason. */
  failures: string[];
}

/** A package result with nothing missing. */
export function passed(name: string, verified: string, checks: string[]): PackageResult {
  return { name, runnable: 'YES', verified, checks, blockers: [], failure: null };
}

/** A package that could not be checked at all: the report's verdict becomes FAIL. */
export function unchecked(name: string, failure: string): PackageResult {
  return { name, runnable: 'NO', verified: `not checked: ${failure}`, checks: [], blockers: [], failure };
}

/** A blocker draft; attachment defaults to none. */
export function blocker(owner: Owner, form: string, why: string, options: { blocking?: boolean; attachment?: string } = {}): BlockerDraft {
  return { owner, form, why, blocking: options.blocking ?? true, attachment: options.attachment ?? null };
}

/** The message of anything thrown, on one line. */
export function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}
