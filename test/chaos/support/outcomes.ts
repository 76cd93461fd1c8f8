import { appendFileSync } from 'node:fs';
import type { Pool } from '../../../shared/db/pool.js';
import { fingerprintCorpusTables } from '../../support/corpus-tables.js';

/**
 * The chaos suite runs a fast subset inside `npm test` and the whole of it
 * under `npm run test:chaos` (CHAOS_FULL=1), which also collects every
 * class's outcome counts into RELIABILITY.md (through CHAOS_OUTCOMES).
 */
export const CHAOS_FULL = process.env['CHAOS_FULL'] === '1';

/** How many trials a class gets: few in `npm test`, many in the full suite. */
export function trials(fast: number, full: number): number {
  return CHAOS_FULL ? full : fast;
}

/** One fault or input class, as RELIABILITY.md reports it. */
export interface Outcome {
  /** Which table of RELIABILITY.md: e.g. "worker SIGKILL", "Redis", "Postgres", "races", "hostile input". */
  group: string;
  /** The fault or input class tried, e.g. "SIGKILL at execute.middle". */
  fault: string;
  tries: number;
  /** Runs that reached an end (succeeded, failed, expired); null where the class has no runs. */
  runsEnded: number | null;
  doubleApplications: number;
  partialApplications: number;
  lostRuns: number;
  forgeriesAccepted: number;
  /** What else was seen: outcome split, bounds measured. */
  notes: string;
}

/** Appends the class's counts for RELIABILITY.md when the full suite collects them. */
export function recordOutcome(outcome: Outcome): void {
  const file = process.env['CHAOS_OUTCOMES'];
  if (file) appendFileSync(file, `${JSON.stringify(outcome)}\n`);
}

/** A class of run trials: runs not ended count as lost; run faults forge nothing. */
export function recordRunTrials(o: { group: string; fault: string; tries: number; ended: number; doubles?: number; partials?: number; notes: string }): void {
  recordOutcome({
    group: o.group,
    fault: o.fault,
    tries: o.tries,
    runsEnded: o.ended,
    doubleApplications: o.doubles ?? 0,
    partialApplications: o.partials ?? 0,
    lostRuns: o.tries - o.ended,
    forgeriesAccepted: 0,
    notes: o.notes,
  });
}

export type CorpusFingerprint = Awaited<ReturnType<typeof fingerprintCorpusTables>>;

/** What a run left in the corpus, judged from Postgres alone. */
export interface RunEffect {
  status: string;
  /** 'none': the corpus is as before; 'once': the plan landed exactly; 'double': more than the plan was written; 'partial': anything else. */
  applied: 'none' | 'once' | 'double' | 'partial';
  planned: number;
  logRows: number;
  versionsWritten: number;
  ledgerRows: number;
  /** A live execute that ran its apply again after the plan had committed (the audit trail says so). */
  reapplyAttempts: number;
}

/**
 * Classifies a run's effect: the lifecycle log and unit_version rows written
 * by the run against its plan, the ledger, and the whole corpus against its
 * fingerprint from before the run.
 */
export async function runEffect(pool: Pool, runId: string, before: CorpusFingerprint): Promise<RunEffect> {
  const { rows } = await pool.query<{
    status: string; planned: number; log_rows: number; versions: number; planned_versions: number; ledger: number; mismatched: number; reapplies: number;
  }>(
    `SELECT r.status,
            (SELECT count(*)::int FROM cutter_governance.cut_change_item i WHERE i.run_id = r.run_id) AS planned,
            (SELECT count(*)::int FROM cutter_governance.cut_change_item i WHERE i.run_id = r.run_id AND i.post_body IS NOT NULL) AS planned_versions,
            (SELECT count(*)::int FROM public.iu_lifecycle_log l WHERE l.run_id = r.run_id) AS log_rows,
            (SELECT count(*)::int FROM public.unit_version v WHERE v.created_by_run = r.run_id) AS versions,
            (SELECT count(*)::int FROM cutter_governance.execution_ledger e WHERE e.run_id = r.run_id) AS ledger,
            (SELECT count(*)::int FROM cutter_governance.cut_change_item i
               LEFT JOIN public.information_unit u ON u.corpus = r.corpus AND u.key = i.key
              WHERE i.run_id = r.run_id
                AND (u.id IS NULL OR u.state <> i.post_state OR u.current_version <> i.post_version)) AS mismatched,
            (SELECT count(*)::int FROM cutter_governance.audit_event a
              WHERE a.run_id = r.run_id AND a.kind = 'execute.failed'
                AND a.seq > (SELECT min(b.seq) FROM cutter_governance.audit_event b WHERE b.run_id = r.run_id AND b.kind = 'execute.applied')) AS reapplies
       FROM cutter_governance.run r WHERE r.run_id = $1`,
    [runId],
  );
  const row = rows[0];
  if (!row) throw new Error(`no run ${runId}`);
  const unchanged = JSON.stringify(await fingerprintCorpusTables(pool)) === JSON.stringify(before);
  let applied: RunEffect['applied'];
  if (row.log_rows === 0 && row.versions === 0 && unchanged) applied = 'none';
  else if (row.log_rows > row.planned || row.versions > row.planned_versions || row.ledger > 1) applied = 'double';
  else if (row.log_rows === row.planned && row.versions === row.planned_versions && row.ledger === 1 && row.mismatched === 0) applied = 'once';
  else applied = 'partial';
  return {
    status: row.status,
    applied,
    planned: row.planned,
    logRows: row.log_rows,
    versionsWritten: row.versions,
    ledgerRows: row.ledger,
    reapplyAttempts: row.reapplies,
  };
}

/**
 * The invariant every chaos run must hold: succeeded with the plan applied
 * exactly once, or ended failed/expired with nothing applied. Returns what
 * is wrong, or null.
 */
export function violation(effect: RunEffect, mode: 'live' | 'dry'): string | null {
  if (effect.reapplyAttempts > 0) return `execute tried to apply again after the plan committed (${effect.reapplyAttempts}×)`;
  if (effect.applied === 'double' || effect.applied === 'partial') return `plan applied ${effect.applied}`;
  if (effect.status === 'succeeded') {
    const expected = mode === 'live' ? 'once' : 'none';
    return effect.applied === expected ? null : `succeeded with the plan applied ${effect.applied} (expected ${expected})`;
  }
  if (effect.status === 'failed' || effect.status === 'expired') {
    return effect.applied === 'none' ? null : `${effect.status} with the plan applied ${effect.applied}`;
  }
  return `did not end (status ${effect.status})`;
}
