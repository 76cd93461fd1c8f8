import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool.js';
import { scopeOfSummary } from '../plan/scope.js';
import { storedDecisionJson, type StoredDecision } from './tally.js';
import type { RunBinding } from './validate.js';

/** A run as the approval rules see it, plus when its approval window ends. */
export interface GateRun extends RunBinding {
  mode: 'dry' | 'live';
  approvalWindowS: number;
  /** cutplan's end + the window; null before the plan exists. */
  windowEndsAt: Date | null;
}

/** The change set columns an approval is bound to (null before the plan exists). */
const planColumns = {
  plan_sha256: z.string().nullable(),
  unit_count: z.number().int().nonnegative().nullable(),
  by_transition: z.record(z.string(), z.number()).nullable(),
};

/** The binding columns of a run and its change set, as loadGateRun selects them. */
const gateRunRow = z.object({
  run_id: z.string(),
  target: z.string(),
  status: z.string(),
  operator: z.string(),
  enqueued_by: z.string(),
  mode: z.enum(['dry', 'live']),
  approval_window_s: z.number().int(),
  ...planColumns,
  window_ends_at: z.date().nullable(),
});
type GateRunRow = z.infer<typeof gateRunRow>;

/**
 * What the approval gate reads in its claim, after the run's lock:
 * cutter_governance.gate_reads (shared/db/functions/gate_reads.sql).
 */
export const GATE_READS = 'cutter_governance.gate_reads';

const gateReadsJson = z.strictObject({
  ...planColumns,
  window_ends_at: z.string().nullable(),
  /** The run's gate already opened (its gate.released audit row exists). */
  opened: z.boolean(),
  unconsumed: z.array(storedDecisionJson),
});

/** The gate's reads: its run as the rules see it, whether it already opened, and its unconsumed approvals. */
export interface GateReads {
  run: GateRun;
  opened: boolean;
  unconsumed: StoredDecision[];
}

/** Reads the run, its frozen plan hash and scope from Postgres (one query); null when no such run. */
export async function loadGateRun(db: Pool | PoolClient, runId: string): Promise<GateRun | null> {
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT r.run_id, r.target, r.status, r.operator, r.enqueued_by, r.mode, r.approval_window_s, c.plan_sha256, c.unit_count, c.by_transition,
            cutter_governance.approval_window_ends_at(r.run_id) AS window_ends_at
       FROM cutter_governance.run r
       LEFT JOIN cutter_governance.cut_change_set c ON c.run_id = r.run_id
      WHERE r.run_id = $1`,
    [runId],
  );
  return rows[0] === undefined ? null : toGateRun(gateRunRow.parse(rows[0]));
}

/** The columns of the claimed run row the gate's binding needs (shared/runs/store.ts RunRow has them). */
export interface ClaimedRun {
  run_id: string;
  target: string;
  status: string;
  operator: string;
  enqueued_by: string;
  mode: 'dry' | 'live';
  approval_window_s: number;
}

/** The gate's reads from its claim: the claimed run row and the jsonb of gate_reads. */
export function gateReadsFromClaim(run: ClaimedRun, reads: unknown): GateReads {
  const r = gateReadsJson.parse(reads);
  return {
    run: toGateRun({
      run_id: run.run_id,
      target: run.target,
      status: run.status,
      operator: run.operator,
      enqueued_by: run.enqueued_by,
      mode: run.mode,
      approval_window_s: run.approval_window_s,
      plan_sha256: r.plan_sha256,
      unit_count: r.unit_count,
      by_transition: r.by_transition,
      window_ends_at: r.window_ends_at === null ? null : new Date(r.window_ends_at),
    }),
    opened: r.opened,
    unconsumed: r.unconsumed,
  };
}

function toGateRun(row: GateRunRow): GateRun {
  return {
    runId: row.run_id,
    target: row.target,
    status: row.status,
    operator: row.operator,
    enqueuedBy: row.enqueued_by,
    mode: row.mode,
    approvalWindowS: row.approval_window_s,
    planSha256: row.plan_sha256,
    // The change set's own summary of its items (execute counts the items again).
    scope: row.plan_sha256 === null ? null : scopeOfSummary({ unit_count: row.unit_count ?? 0, by_transition: row.by_transition ?? {} }),
    windowEndsAt: row.window_ends_at,
  };
}
