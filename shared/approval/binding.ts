import type { Pool, PoolClient } from '../db/pool.js';
import { scopeOfSummary } from '../execute/authority.js';
import type { RunRow } from '../runs/store.js';
import { decisionsFromJson, type StoredDecision } from './tally.js';
import type { RunBinding } from './validate.js';

/** A run as the approval rules see it, plus when its approval window ends. */
export interface GateRun extends RunBinding {
  mode: 'dry' | 'live';
  approvalWindowS: number;
  /** cutplan's end + the window; null before the plan exists. */
  windowEndsAt: Date | null;
}

/**
 * When a run's approval window ends, as SQL over `cutter_governance.run r`:
 * cutplan's finish + the window, null before the plan exists. Defined once,
 * in the database (migration 012), for this read and for the store's own
 * check, so "received before the end" means the same thing to each of them.
 */
export const WINDOW_ENDS_AT_SQL = 'cutter_governance.approval_window_ends_at(r.run_id)';

/** The columns a GateRun is made of, as PostgreSQL returns them. */
interface GateRunRow {
  run_id: string;
  target: string;
  status: string;
  operator: string;
  mode: 'dry' | 'live';
  approval_window_s: number;
  plan_sha256: string | null;
  unit_count: number | null;
  by_transition: Record<string, number> | null;
  window_ends_at: Date | null;
}

/** Reads the run, its frozen plan hash and scope from Postgres (one query); null when no such run. */
export async function loadGateRun(db: Pool | PoolClient, runId: string): Promise<GateRun | null> {
  const { rows } = await db.query<GateRunRow>(
    `SELECT r.run_id, r.target, r.status, r.operator, r.mode, r.approval_window_s, c.plan_sha256, c.unit_count, c.by_transition,
            ${WINDOW_ENDS_AT_SQL} AS window_ends_at
       FROM cutter_governance.run r
       LEFT JOIN cutter_governance.cut_change_set c ON c.run_id = r.run_id
      WHERE r.run_id = $1`,
    [runId],
  );
  const row = rows[0];
  return row ? toGateRun(row) : null;
}

/** What the approval gate's claim read after taking the run's lock (migration 015): its run as the rules see it, and its unconsumed approvals. */
export interface GateReads {
  run: GateRun;
  unconsumed: StoredDecision[];
}

/**
 * The gate's reads from its claim's row: the claimed run row and the jsonb of
 * cutter_governance.gate_reads (the change set's hash and scope, the window's
 * end, the unconsumed approvals).
 */
export function gateReadsFromClaim(run: RunRow, reads: unknown): GateReads {
  if (reads === null || typeof reads !== 'object') throw new Error(`the gate's claim of run ${run.run_id} carried no reads`);
  const r = reads as { plan_sha256: string | null; unit_count: number | null; by_transition: Record<string, number> | null; window_ends_at: string | null; unconsumed: unknown };
  return {
    run: toGateRun({
      ...run,
      plan_sha256: r.plan_sha256,
      unit_count: r.unit_count,
      by_transition: r.by_transition,
      window_ends_at: r.window_ends_at === null ? null : new Date(r.window_ends_at),
    }),
    unconsumed: decisionsFromJson(r.unconsumed),
  };
}

function toGateRun(row: GateRunRow): GateRun {
  return {
    runId: row.run_id,
    target: row.target,
    status: row.status,
    operator: row.operator,
    mode: row.mode,
    approvalWindowS: row.approval_window_s,
    planSha256: row.plan_sha256,
    // The change set's own summary of its items (execute counts the items again).
    scope: row.plan_sha256 === null ? null : scopeOfSummary(row.unit_count ?? 0, row.by_transition ?? {}),
    windowEndsAt: row.window_ends_at,
  };
}
