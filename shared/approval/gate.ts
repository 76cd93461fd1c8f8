import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/errors.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import type { PhaseResult } from '../jobs/results.js';
import type { GateReads } from './binding.js';
import type { TrustedKeys } from './keys.js';
import { tallyDecisions } from './tally.js';

/**
 * SG_1, decided from Postgres alone. The gate's job wakes when its delay (the
 * approval window) ends or when it is promoted: by the approval endpoint
 * after a valid SG_1 quorum and EXEC grant were stored, or by anyone else
 * with access to Redis. How it was woken is never consulted (FIELD-NOTES).
 * It decides on one read, taken in its claim after the run's lock (so every
 * approval not refused has committed before it): valid unconsumed approvals
 * open it, and the commit that records the phase completed consumes exactly
 * those (openGate); otherwise the run ends expired (window over) or failed
 * closed and audited (released by hand). Fail closed: only valid, recorded,
 * unconsumed approvals open it.
 */

export type GateResult = PhaseResult<'approval-gate'>;

// BullMQ starts the delay when cutplan's job completes, a little after the
// phase row records it; and hosts' clocks differ by a little.
const EXPIRY_TOLERANCE_MS = 2000;

export interface GateContext {
  keys: TrustedKeys;
  quorum: number;
  now: Date;
}

/**
 * The gate's decision on its claim's reads: the approvals that open it, or
 * (its gate.released row exists) that a redelivery finds it already open;
 * otherwise throws APPROVAL_EXPIRED or, audited, GATE_BYPASSED.
 */
export async function decideGate(pool: Pool, reads: GateReads, ctx: GateContext): Promise<GateResult> {
  const { run } = reads;
  if (!run.windowEndsAt) throw new CutterError('GATE_NOT_ARMED', `run ${run.runId} reached the gate without a plan`);
  const windowEndsAt = run.windowEndsAt;
  // Only approvals received before the window's end count (store_approval refuses later ones; this holds for rows written any other way).
  const rows = reads.unconsumed.filter((r) => r.received_utc <= windowEndsAt);
  const tally = tallyDecisions(rows, { keys: ctx.keys, run, now: ctx.now, stage: 'gate', quorum: ctx.quorum });
  if (tally.complete) {
    return {
      released: 'approvals',
      sg_1_keys: tally.sg1.map((a) => a.key.keyId),
      exec_keys: tally.exec.map((a) => a.key.keyId),
      quorum: ctx.quorum,
      decision_ids: [...tally.sg1, ...tally.exec].map((a) => a.id),
    };
  }
  // A redelivery of a gate that already opened finds its approvals consumed: not a bypass.
  if (reads.opened) return { released: 'already', sg_1_keys: [], exec_keys: [], quorum: ctx.quorum, decision_ids: [] };

  const missing = `waiting for ${tally.waitingFor.join(' and ')}`;
  if (ctx.now.getTime() + EXPIRY_TOLERANCE_MS >= windowEndsAt.getTime()) {
    throw new CutterError(
      'APPROVAL_EXPIRED',
      `no valid SG_1 approval and EXEC grant arrived within the approval window (${run.approvalWindowS} s) for run ${run.runId} (${missing})`,
    );
  }
  await appendAudit(pool, {
    actor: 'worker:approval-gate',
    kind: 'gate.released_without_approval',
    runId: run.runId,
    detail: {
      window_ends_utc: windowEndsAt.toISOString(),
      waiting_for: tally.waitingFor,
      invalid: tally.invalid.map((i) => ({ decision_id: i.id, gate: i.gate, code: i.code })),
    },
  });
  throw new CutterError(
    'GATE_BYPASSED',
    `the approval gate of run ${run.runId} was released without a valid SG_1 approval and EXEC grant in Postgres (${missing}): failing closed`,
  );
}

/**
 * Consumes exactly the approvals that opened the gate, once, and audits it,
 * in the commit that records the gate phase completed (the run's lock is
 * held): cutter_governance.open_gate. A twin delivery that opened it first
 * leaves nothing to consume and changes nothing; approvals consumed by any
 * other hand (GATE_CONSUME_RACE) or a run that ended meanwhile
 * (GATE_RUN_ENDED) fail the gate closed, and the whole commit rolls back.
 */
export async function openGate(tx: PoolClient, runId: string, result: GateResult): Promise<void> {
  if (result.released !== 'approvals') return;
  try {
    await tx.query('SELECT cutter_governance.open_gate($1, $2::bigint[], $3, $4::jsonb)', [
      runId,
      result.decision_ids,
      'worker:approval-gate',
      JSON.stringify({ decision_ids: result.decision_ids, sg_1_keys: result.sg_1_keys, exec_keys: result.exec_keys, quorum: result.quorum }),
    ]);
  } catch (err) {
    if (isPgError(err, 'CG001')) throw new CutterError('GATE_CONSUME_RACE', `run ${runId}: some approvals were consumed elsewhere; failing closed`);
    if (isPgError(err, 'CG002')) throw new CutterError('GATE_RUN_ENDED', `run ${runId} ended while its gate was deciding; nothing consumed`);
    throw err;
  }
}
