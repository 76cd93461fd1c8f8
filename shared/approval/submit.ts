import type { Queue } from 'bullmq';
import type { Pool } from '../db/pool.js';
import type { Phase } from '../jobs/catalog.js';
import type { Logger } from '../logger.js';
import { loadGateRun, type GateRun } from './binding.js';
import type { ApprovalGate } from './document.js';
import { parseEnvelope } from './envelope.js';
import type { TrustedKeys } from './keys.js';
import { refusal } from './refusals.js';
import { releaseGate, type ReleaseOutcome } from './release.js';
import { storeDecision } from './store.js';
import { listDecisions, tallyDecisions, type GateTally } from './tally.js';
import { checkBinding, verifySigned, type ValidApproval } from './validate.js';

/**
 * What happens to a decision that arrives at the endpoint, apart from HTTP:
 * checkSubmission (the rules that need no lock), then acceptApproval (store,
 * count, release) or, for a rejection, shared/stop/reject.ts. Kept free of
 * express so the CLI, the sweeper and tests can drive the same code.
 */

export interface ApprovalDeps {
  pool: Pool;
  keys: TrustedKeys;
  quorum: number;
  /** The phase queues under CUTTER_QUEUE_PREFIX: the gate is promoted there, a rejected run's jobs removed. */
  queues: Record<Phase, Queue>;
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
  /** Only for a rejection: the run has ended rejected. */
  rejected?: true;
  released: boolean;
  /** Gates still missing (SG_1, EXEC); "release" when both are in but the gate job is not yet releasable. */
  waiting_for: string[];
  sg_1: { valid_keys: number; quorum: number };
  exec_granted: boolean;
}

/** A submission that passed every rule checked before the run's lock: the approval, its run, the time it was judged at. */
export interface CheckedSubmission {
  valid: ValidApproval;
  run: GateRun;
  now: Date;
}

/** Validates and stores one approval for runId and releases the gate when SG_1 and EXEC are complete. */
export async function submitApproval(deps: ApprovalDeps, runId: string, body: unknown): Promise<SubmitAnswer> {
  return acceptApproval(deps, await checkSubmission(deps, runId, body));
}

/** The rules of DESIGN §3 that need no lock, in the order a hostile or clumsy request meets them; throws the refusal. */
export async function checkSubmission(deps: Pick<ApprovalDeps, 'pool' | 'keys' | 'now'>, runId: string, body: unknown): Promise<CheckedSubmission> {
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
  return { valid, run, now };
}

/** Stores a checked SG_1 approval or EXEC grant and releases the gate when both are complete (a rejection: shared/stop/reject.ts). */
export async function acceptApproval(deps: ApprovalDeps, { valid, run, now }: CheckedSubmission): Promise<SubmitAnswer> {
  if (valid.doc.gate === 'REJECT') throw refusal('APPROVAL_GATE_WRONG', 'a rejection is not an approval: it is submitted to the approval endpoint, which ends the run');
  const runId = run.runId;
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
  const outcome = await releaseGate(deps.queues['approval-gate'], run.runId, { waitMs });
  if (outcome === 'gone') deps.log.error({ run_id: run.runId }, 'approvals are complete but the gate job is missing or failed');
  return { tally, outcome };
}

