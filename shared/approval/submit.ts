import type { Queue } from 'bullmq';
import type { Pool } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { loadGateRun, type GateRun } from './binding.js';
import type { ApprovalGate } from './document.js';
import { parseEnvelope } from './envelope.js';
import type { TrustedKeys } from './keys.js';
import { refusal } from './refusals.js';
import { releaseGate, type ReleaseOutcome } from './release.js';
import { storeDecision } from './store.js';
import { listDecisions, tallyDecisions, type GateTally } from './tally.js';
import { checkBinding, verifySigned } from './validate.js';

/**
 * What happens to an approval that arrives at the endpoint, apart from
 * HTTP: validate, store, count, release. Kept free of express so the CLI,
 * the sweeper and tests can drive the same code.
 */

export interface ApprovalDeps {
  pool: Pool;
  keys: TrustedKeys;
  quorum: number;
  /** The approval-gate queue under CUTTER_QUEUE_PREFIX. */
  gateQueue: Queue;
  log: Logger;
  /** How long a release waits for the gate to become delayed (cutplan's job completing). */
  releaseWaitMs: number;
  now?: () => Date;
}

/** The 201 answer of DESIGN §5 (snake_case), with the counts behind waiting_for. */
export interface SubmitAnswer {
  accepted: true;
  gate: ApprovalGate;
  decision_id: number;
  released: boolean;
  /** Gates still missing (SG_1, EXEC); "release" when both are in but the gate job is not yet releasable. */
  waiting_for: string[];
  sg_1: { valid_keys: number; quorum: number };
  exec_granted: boolean;
}

/** Validates and stores one approval for runId and releases the gate when SG_1 and EXEC are complete. */
export async function submitApproval(deps: ApprovalDeps, runId: string, body: unknown): Promise<SubmitAnswer> {
  const now = deps.now?.() ?? new Date();
  // Signature first: a forged or malformed request is refused before it costs a database round trip.
  const signed = verifySigned(parseEnvelope(body), deps.keys);
  const run = await loadGateRun(deps.pool, runId);
  if (!run) throw refusal('RUN_UNKNOWN', `no run ${runId}`);
  const valid = checkBinding(signed, { run, now, stage: 'submit' });
  // An early answer on the window; storeDecision decides it again under the run's lock, in the database's clock.
  if (run.windowEndsAt && now >= run.windowEndsAt) {
    throw refusal('APPROVAL_RUN_NOT_AWAITING', `the approval window of run ${run.runId} ended at ${run.windowEndsAt.toISOString()}`);
  }
  const decisionId = await storeDecision(deps.pool, valid);
  const { tally, outcome } = await releaseIfApproved(deps, run, now);
  deps.log.info(
    { run_id: runId, gate: valid.doc.gate, key_id: valid.key.keyId, decision_id: decisionId, waiting_for: tally.waitingFor, release: outcome },
    'approval accepted',
  );
  const released = outcome === 'released';
  return {
    accepted: true,
    gate: valid.doc.gate,
    decision_id: decisionId,
    released,
    waiting_for: tally.complete && !released ? ['release'] : tally.waitingFor,
    sg_1: { valid_keys: tally.sg1.length, quorum: tally.quorum },
    exec_granted: tally.exec.length > 0,
  };
}

/**
 * Counts the run's unconsumed approvals (every one validated again) and,
 * when SG_1 (with quorum) and EXEC are both valid, promotes the gate, which
 * then decides for itself from Postgres. Outcome null: not complete yet.
 */
export async function releaseIfApproved(
  deps: ApprovalDeps,
  run: GateRun,
  now: Date,
  waitMs = deps.releaseWaitMs,
): Promise<{ tally: GateTally; outcome: ReleaseOutcome | null }> {
  const rows = await listDecisions(deps.pool, run.runId, 'unconsumed');
  const tally = tallyDecisions(rows, { keys: deps.keys, run, now, stage: 'gate', quorum: deps.quorum });
  if (!tally.complete) return { tally, outcome: null };
  const outcome = await releaseGate(deps.gateQueue, run.runId, { waitMs });
  if (outcome === 'gone') deps.log.error({ run_id: run.runId }, 'approvals are complete but the gate job is missing or failed');
  return { tally, outcome };
}
