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

/** PASS: the check ran to the end and the state it guards is as it should be (unchanged while it ran; equal to the baseline when one is named). FAIL: it could not be completed, or something changed. */
export type G8 = 'PASS' | 'FAIL';

/** A blocker as a check finds it; numbered once every check has run. */
export interface BlockerDraft {
  /** Whose move it is; more than one when each must act (the operator enqueues, the sovereign signs). */
  owners: Owner[];
  /** The exact thing that clears it. */
  form: string;
  blocking: boolean;
  /** What was found, in a sentence. */
  why: string;
  /** Text that goes with the form (the grant package), or null. */
  attachment: string | null;
  /** The gap it fills (a criterion C1–C7, a gate SG_1/EXEC…); the package's own when the check does not say. */
  gap: string | null;
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
  /** Set when the check itself could not be completed: g8 becomes FAIL. */
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

export interface Blocker extends Omit<BlockerDraft, 'gap'> {
  id: number;
  gap: string;
  /** The package row that found it, and that answers it. */
  package: string;
}

/** Section 4: how far each package of the first live run's path is. */
export type PathState = 'CLOSED/READY' | 'PACKAGED' | 'OPEN';

export interface FirstRunStep {
  package: string;
  state: PathState;
  /** Why it is in that state: what was verified, or the first thing still open. */
  note: string;
}

/** One line of section 1 against a baseline: `<item>: <now> == baseline` or `!= baseline (was N)`. */
export interface BaselineLine {
  item: string;
  now: number | null;
  baseline: number;
  equal: boolean;
  line: string;
}

/** Section 1 against a recorded baseline. */
export interface BaselineState {
  name: string;
  recorded_utc: string;
  recorded_by: string;
  lines: BaselineLine[];
  /** Every line equal: "ZERO persistent production mutation". */
  holds: boolean;
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

/** The readiness report of DESIGN §4, in the shape of the G8 readiness report operators know. */
export interface Readiness {
  g8: G8;
  /** One sentence saying why g8 is what it is. */
  g8_reason: string;
  /** "yes", or "no (N open)": a passing check is not a go while blocking items are open. */
  ready_for_live_run: string;
  /** NONE when the database is as it was (during the check, and against the baseline when one is named). */
  production_mutation: 'NONE' | 'CHANGED' | 'UNKNOWN';
  /** execution_enabled() as read at the end of the check (null when it could not be read). */
  execution_enabled: boolean | null;
  started_utc: string;
  finished_utc: string;
  scope: ReadinessScope;
  /** This check's own proof: every governed table and the switch, before and after it ran. */
  db_state: DbStateRow[];
  /** Section 1 against a recorded G0 baseline (`--baseline NAME`), or null. */
  baseline: BaselineState | null;
  packages: PackageRow[];
  criteria: CriterionRow[];
  blockers: Blocker[];
  first_run_path: FirstRunStep[];
  /** Why the check could not be completed; empty unless g8 is FAIL for that reason. */
  failures: string[];
}

/** A package result with nothing missing. */
export function passed(name: string, verified: string, checks: string[]): PackageResult {
  return { name, runnable: 'YES', verified, checks, blockers: [], failure: null };
}

/** A package that could not be checked at all: the report's g8 becomes FAIL. */
export function unchecked(name: string, failure: string): PackageResult {
  return { name, runnable: 'NO', verified: `not checked: ${failure}`, checks: [], blockers: [], failure };
}

/** A blocker draft; attachment defaults to none, the gap to its package's. */
export function blocker(owners: Owner | Owner[], form: string, why: string, options: { blocking?: boolean; attachment?: string; gap?: string } = {}): BlockerDraft {
  return { owners: Array.isArray(owners) ? owners : [owners], form, why, blocking: options.blocking ?? true, attachment: options.attachment ?? null, gap: options.gap ?? null };
}

/** The message of anything thrown, on one line. */
export function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
}
