import type { Pool } from '../db/pool.js';
import { isPhase, phasesFor } from '../jobs/catalog.js';
import { phaseProgress, planSummary } from '../jobs/results.js';
import { runDeliveries, type DeliveryView } from '../notify/store.js';
import { listSkipped } from './revert-skipped.js';
import { completedResult, getPhases, getRun, type PhaseRow } from './store.js';

/** The run object of DESIGN §4 (snake_case keys, stable). */
export interface RunView {
  run_id: string;
  target: string;
  corpus: string;
  mode: 'dry' | 'live';
  status: string;
  phase: string | null;
  verdict: 'PASS' | 'FAIL' | null;
  operator: string;
  /** The database login that enqueued the run, as Postgres recorded it. */
  enqueued_by: string;
  failed_phase: string | null;
  error: { code: string; message: string } | null;
  created_utc: string;
  finished_utc: string | null;
  /** The run this one reverts (its plan is the inverse of what that run applied: docs/undo.md); null for a run of a snapshot. */
  revert_of: string | null;
  /**
   * A revert's units left out because they changed after the run it reverts
   * (--skip-drifted): how many, and the first REVERT_SKIPPED_SHOWN by key with
   * the run that changed each; null for a run that is no revert.
   */
  revert_skipped: { count: number; units: { key: string; changed_by_run: string | null }[] } | null;
  plan: { plan_sha256: string; unit_count: number; by_op: Record<string, number>; by_transition: Record<string, number> } | null;
  phases: {
    phase: string;
    state: string;
    attempts: number;
    started_utc: string | null;
    finished_utc: string | null;
    duration_ms: number | null;
    summary: Record<string, unknown>;
    error: { code: string | null; message: string } | null;
  }[];
  /** Each webhook delivery of the run's events (docs/notifications.md); empty without CUTTER_WEBHOOK_URLS. */
  notifications: DeliveryView[];
}

/** How many of a revert's skipped units the run object lists (all of them are in cutter_governance.revert_skip). */
export const REVERT_SKIPPED_SHOWN = 100;

/** Reads a run and its phases into the JSON shape the CLI and the API print; null when unknown. */
export async function runView(pool: Pool, runId: string): Promise<RunView | null> {
  const run = await getRun(pool, runId);
  if (!run) return null;
  const rows = await getPhases(pool, runId);
  const plan = await pool.query<Record<string, unknown>>(
    'SELECT plan_sha256, unit_count, by_op, by_transition FROM cutter_governance.cut_change_set WHERE run_id = $1',
    [runId],
  );
  const phases = phasesFor(run.mode).map((phase) => {
    const row = rows.find((r) => r.phase === phase);
    if (!row) return { phase, state: 'pending', attempts: 0, started_utc: null, finished_utc: null, duration_ms: null, summary: {}, error: null };
    const summary = phaseSummary(rows, row);
    return {
      phase,
      state: row.state,
      attempts: row.attempts,
      started_utc: row.started_at.toISOString(),
      finished_utc: row.finished_at?.toISOString() ?? null,
      duration_ms: row.finished_at ? row.finished_at.getTime() - row.started_at.getTime() : null,
      summary,
      error: row.error ? { code: row.error_code, message: row.error } : null,
    };
  });
  return {
    run_id: run.run_id,
    target: run.target,
    corpus: run.corpus,
    mode: run.mode,
    status: run.status,
    phase: run.phase,
    verdict: run.verdict,
    operator: run.operator,
    enqueued_by: run.enqueued_by,
    failed_phase: run.failed_phase,
    error: run.error_code ? { code: run.error_code, message: run.error_message ?? '' } : null,
    created_utc: run.created_at.toISOString(),
    finished_utc: run.finished_at?.toISOString() ?? null,
    revert_of: run.revert_of,
    revert_skipped: run.revert_of === null ? null : await listSkipped(pool, runId, REVERT_SKIPPED_SHOWN),
    plan: plan.rows[0] === undefined ? null : planSummary.parse(plan.rows[0]),
    phases,
    notifications: await runDeliveries(pool, runId),
  };
}

/**
 * A phase as the view shows it: its result once completed (cutplan's
 * fingerprint is for verify, not for people), its progress before. A stored
 * record its schema refuses is shown as such, not guessed at.
 */
function phaseSummary(rows: PhaseRow[], row: PhaseRow): Record<string, unknown> {
  try {
    if (row.state !== 'completed') return phaseProgress.parse(row.summary);
    if (row.phase === 'cutplan') {
      const result = completedResult(rows, 'cutplan');
      if (!result) return {};
      const { outside_fingerprint, ...plan } = result;
      return plan;
    }
    return isPhase(row.phase) ? (completedResult(rows, row.phase) ?? {}) : {};
  } catch (err) {
    return { unreadable: `the stored ${row.phase} record does not match its schema: ${(err as Error).message.replace(/\s+/g, ' ').slice(0, 300)}` };
  }
}
