import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/errors.js';
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
 * How an opening claims the gate's phase: already claimed by this attempt,
 * or claimed by the opening itself (started at the read). judged: the reads
 * were the endpoint's handoff, this text (shared/approval/handoff.ts).
 */
export type GateClaim = { claimed: true } | { claimed: false; startedAt: Date | undefined; judged?: string | undefined };

/**
 * Opens the gate when the approvals read are valid and complete: consumes
 * exactly those, audits it and records the phase completed (claiming it too
 * when it was not yet), in one commit. Null when they are not complete, or
 * when, read before any claim, they were consumed elsewhere, the run ended
 * meanwhile, or (a handoff) Postgres no longer holds what was judged:
 * decideGate then decides after a claim.
 */
export async function openIfApproved(deps: GateDeps, reads: GateReads, claim: GateClaim): Promise<GateOpened | null> {
  const tally = tallyReads(reads, await deps.keys, deps);
  if (!tally.complete) return null;
  const outcome = await open(deps, reads.run.runId, tally, claim);
  return typeof outcome === 'string' ? null : outcome;
}

/**
 * Opens the gate (consuming the approvals) or throws APPROVAL_EXPIRED /
 * GATE_BYPASSED. reads: the run and its unconsumed approvals as the gate's
 * claim read them (gateReadsFromClaim).
 */
export async function decideGate(deps: GateDeps, reads: GateReads): Promise<GateOpened> {
  const { run } = reads;
  const runId = run.runId;
  const tally = tallyReads(reads, await deps.keys, deps);
  if (tally.complete) {
    const outcome = await open(deps, runId, tally, { claimed: true });
    if (typeof outcome !== 'string') return outcome;
    if (outcome === 'run_ended') throw new CutterError('GATE_RUN_ENDED', `run ${runId} ended while its gate was deciding; nothing consumed`);
    // Consumed elsewhere ('changed' needs a handoff, and a claimed opening judges none).
    // A twin delivery that opened first: not a bypass.
    if (await alreadyOpened(deps.pool, runId)) return { consumedNow: false, sg1Keys: [], execKeys: [] };
    throw new CutterError('GATE_CONSUME_RACE', `run ${runId}: some approvals were consumed elsewhere; failing closed`);
  }
  // A redelivery of a gate that already opened finds its approvals consumed: not a bypass.
  if (await alreadyOpened(deps.pool, runId)) return { consumedNow: false, sg1Keys: [], execKeys: [] };

  // The switch an EXEC grant turned on must not outlive a gate that stays shut.
  await deps.pool.query(
    `UPDATE cutter_governance.execution_switch
        SET enabled = false, run_id = NULL, expires_at = NULL, changed_at = now(), changed_by = 'worker:approval-gate'
      WHERE run_id = $1`,
    [runId],
  );
  const windowEndsAt = windowEnd(run);
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

function windowEnd(run: GateReads['run']): Date {
  if (!run.windowEndsAt) throw new CutterError('GATE_NOT_ARMED', `run ${run.runId} reached the gate without a plan`);
  return run.windowEndsAt;
}

/**
 * What the approvals read are worth now. Only those received before the
 * window's end count. After a claim no approval can still be on its way in:
 * the claim set the run running under the row lock that storeDecision takes
 * and checks, and read the approvals after it had that lock (migration 015),
 * so every approval not refused had committed before this read, received
 * (in the database's clock) before the window's end. Before a claim, an
 * approval may still arrive; only a complete tally acts on such a read, and
 * a later approval stays unconsumed. The filter keeps it that way for rows
 * written any other way.
 */
function tallyReads(reads: GateReads, keys: TrustedKeys, deps: GateDeps): GateTally {
  const windowEndsAt = windowEnd(reads.run);
  const rows = reads.unconsumed.filter((r) => r.received_utc <= windowEndsAt);
  return tallyDecisions(rows, { keys, run: reads.run, now: deps.now, stage: 'gate', quorum: deps.quorum });
}

/** Whether run $1's gate opened: its gate.released audit row, found by a partial index (migration 019), not a scan of the chain. */
export const GATE_OPENED_SQL = `SELECT 1 FROM cutter_governance.audit_event WHERE run_id = $1 AND kind = 'gate.released' LIMIT 1`;

async function alreadyOpened(db: Pool, runId: string): Promise<boolean> {
  const { rowCount } = await db.query(GATE_OPENED_SQL, [runId]);
  return Boolean(rowCount);
}

/**
 * Marks exactly the approvals that opened the gate as consumed, once, audits
 * it and records the gate phase completed: one call of
 * cutter_governance.open_gate (migrations 016, 018), one commit. Its row
 * locks serialise a twin delivery of the gate: the twin waits, then finds the
 * rows consumed (CG001, nothing changed). Otherwise it says which: some
 * approval was consumed elsewhere (CG001), the run is no longer in flight
 * (CG002), or it is not what the handoff judged said (CG003).
 */
async function open(deps: GateDeps, runId: string, tally: GateTally, claim: GateClaim): Promise<GateOpened | 'consumed_elsewhere' | 'run_ended' | 'changed'> {
  const ids = [...tally.sg1, ...tally.exec].map((a) => a.id);
  const opened = { sg1Keys: tally.sg1.map((a) => a.key.keyId), execKeys: tally.exec.map((a) => a.key.keyId) };
  await deps.beforeConsume?.();
  try {
    await deps.pool.query('SELECT cutter_governance.open_gate($1, $2::bigint[], $3, $4::jsonb, $5::jsonb, $6, $7, $8::jsonb)', [
      runId,
      ids,
      'worker:approval-gate',
      JSON.stringify({ decision_ids: ids, sg_1_keys: opened.sg1Keys, exec_keys: opened.execKeys, quorum: tally.quorum }),
      JSON.stringify(gateSummary({ consumedNow: true, ...opened }, deps.quorum)),
      claim.claimed,
      claim.claimed ? null : (claim.startedAt ?? null),
      claim.claimed ? null : (claim.judged ?? null),
    ]);
  } catch (err) {
    if (isPgError(err, 'CG001')) return 'consumed_elsewhere';
    if (isPgError(err, 'CG002')) return 'run_ended';
    if (isPgError(err, 'CG003')) return 'changed';
    throw err;
  }
  return { consumedNow: true, ...opened };
}
