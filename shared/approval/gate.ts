import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/migrate.js';
import type { Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import type { GateReads } from './binding.js';
import type { TrustedKeys } from './keys.js';
import { tallyDecisions, type GateTally } from './tally.js';

/**
 * What the SG_1 gate decides when its job wakes, from Postgres alone: the
 * job cannot tell an approval's release from the window's end or from a
 * promote by hand (FIELD-NOTES), so how it was woken is never consulted.
 * Fail closed: only valid, recorded, unconsumed approvals open it.
 */

// BullMQ starts the delay when cutplan's job completes, a little after the
// phase row records it; and hosts' clocks differ by a little.
const EXPIRY_TOLERANCE_MS = 2000;

export interface GateDeps {
  pool: Pool;
  /** The trusted keys, or their read still under way. */
  keys: TrustedKeys | Promise<TrustedKeys>;
  quorum: number;
  now: Date;
  /** Runs after the approvals were judged valid, just before they are consumed (the crash tests' kill point). */
  beforeConsume?: () => Promise<void>;
}

export interface GateOpened {
  /** False when a redelivered gate finds it had already opened (nothing consumed twice). */
  consumedNow: boolean;
  sg1Keys: string[];
  execKeys: string[];
}

/** The gate phase's summary, as the run's phase row keeps it. */
export function gateSummary(opened: GateOpened, quorum: number): Record<string, unknown> {
  return {
    released: opened.consumedNow ? 'by valid approvals' : 'already (redelivered)',
    sg_1_keys: opened.sg1Keys,
    exec_keys: opened.execKeys,
    quorum,
  };
}

/**
 * Opens the gate (consuming the approvals) or throws APPROVAL_EXPIRED /
 * GATE_BYPASSED. reads: the run and its unconsumed approvals as the gate's
 * claim read them (gateReadsFromClaim).
 */
export async function decideGate(deps: GateDeps, reads: GateReads): Promise<GateOpened> {
  const { run, unconsumed } = reads;
  const runId = run.runId;
  const keys = await deps.keys;
  if (!run.windowEndsAt) throw new CutterError('GATE_NOT_ARMED', `run ${runId} reached the gate without a plan`);
  const windowEndsAt = run.windowEndsAt;
  // No approval can still be on its way in: the claim set the run running
  // under the row lock that storeDecision takes and checks, and read the
  // approvals after it had that lock (migration 015), so every approval not
  // refused had committed before this read, received (in the database's
  // clock) before the window's end. The filter keeps it that way for rows
  // written any other way.
  const rows = unconsumed.filter((r) => r.received_utc <= windowEndsAt);
  const tally = tallyDecisions(rows, { keys, run, now: deps.now, stage: 'gate', quorum: deps.quorum });
  if (tally.complete) return consume(deps, runId, tally);
  // A redelivery of a gate that already opened finds its approvals consumed: not a bypass.
  if (await alreadyOpened(deps.pool, runId)) return { consumedNow: false, sg1Keys: [], execKeys: [] };

  // The switch an EXEC grant turned on must not outlive a gate that stays shut.
  await deps.pool.query(
    `UPDATE cutter_governance.execution_switch
        SET enabled = false, run_id = NULL, expires_at = NULL, changed_at = now(), changed_by = 'worker:approval-gate'
      WHERE run_id = $1`,
    [runId],
  );
  const missing = `waiting for ${tally.waitingFor.join(' and ')}`;
  if (deps.now.getTime() + EXPIRY_TOLERANCE_MS >= windowEndsAt.getTime()) {
    throw new CutterError(
      'APPROVAL_EXPIRED',
      `no valid SG_1 approval and EXEC grant arrived within the approval window (${run.approvalWindowS} s) for run ${runId} (${missing})`,
    );
  }
  await appendAudit(deps.pool, {
    actor: 'worker:approval-gate',
    kind: 'gate.released_without_approval',
    runId,
    detail: {
      window_ends_utc: windowEndsAt.toISOString(),
      waiting_for: tally.waitingFor,
      invalid: tally.invalid.map((i) => ({ decision_id: i.id, gate: i.gate, code: i.code })),
    },
  });
  throw new CutterError(
    'GATE_BYPASSED',
    `the approval gate of run ${runId} was released without a valid SG_1 approval and EXEC grant in Postgres (${missing}): failing closed`,
  );
}

async function alreadyOpened(db: Pool, runId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM cutter_governance.audit_event WHERE run_id = $1 AND kind = 'gate.released' LIMIT 1`,
    [runId],
  );
  return Boolean(rowCount);
}

/**
 * Marks exactly the approvals that opened the gate as consumed, once, audits
 * it and records the gate phase completed (consumedNow): one call of
 * cutter_governance.consume_approvals (migration 013), one commit. Its row
 * locks serialise a twin delivery of the gate: the twin waits, then finds the
 * rows consumed (CG001, nothing changed) and the gate already opened.
 */
async function consume(deps: GateDeps, runId: string, tally: GateTally): Promise<GateOpened> {
  const ids = [...tally.sg1, ...tally.exec].map((a) => a.id);
  const opened = { sg1Keys: tally.sg1.map((a) => a.key.keyId), execKeys: tally.exec.map((a) => a.key.keyId) };
  await deps.beforeConsume?.();
  try {
    await deps.pool.query('SELECT cutter_governance.consume_approvals($1, $2::bigint[], $3, $4::jsonb, $5::jsonb)', [
      runId,
      ids,
      'worker:approval-gate',
      JSON.stringify({ decision_ids: ids, sg_1_keys: opened.sg1Keys, exec_keys: opened.execKeys, quorum: tally.quorum }),
      JSON.stringify(gateSummary({ consumedNow: true, ...opened }, deps.quorum)),
    ]);
  } catch (err) {
    if (!isPgError(err, 'CG001')) throw err;
    if (await alreadyOpened(deps.pool, runId)) return { consumedNow: false, ...opened };
    throw new CutterError('GATE_CONSUME_RACE', `run ${runId}: some approvals were consumed elsewhere; failing closed`);
  }
  return { consumedNow: true, ...opened };
}
