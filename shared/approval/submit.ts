import type { Queue } from 'bullmq';
import type { Pool } from '../db/pool.js';
import type { Logger } from '../logger.js';
import { loadGateRun, type GateRun } from './binding.js';
import type { BindingCache } from './binding-cache.js';
import type { ApprovalGate } from './document.js';
import { parseEnvelope } from './envelope.js';
import type { TrustedKeys } from './keys.js';
import { refusal } from './refusals.js';
import { releaseGate, type ReleaseOutcome } from './release.js';
import { storeDecision } from './store.js';
import { listDecisions, tallyDecisions, type GateTally, type StoredDecision } from './tally.js';
import { checkBinding, verifySigned, type SignedDocument, type ValidApproval } from './validate.js';

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
  /** Runs' frozen bindings as this process read them (the board keeps one); without it every approval reads its run. */
  bindings?: BindingCache;
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
  const { run, valid } = await checkAgainstRun(deps, runId, signed, now);
  // The store answers with the run's unconsumed approvals, read under the run's lock after the insert: no second read.
  const { decisionId, unconsumed, handoff } = await storeDecision(deps.pool, valid).catch((err: unknown) => {
    // Refused under the run's lock: the next approval for it reads the run afresh.
    deps.bindings?.forget(runId);
    throw err;
  });
  const { tally, outcome } = await releaseIfTallied(deps, run, unconsumed, now, deps.releaseWaitMs, { id: decisionId, approval: valid, handoff });
  if (outcome === 'released') deps.bindings?.forget(runId);
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
 * The approval checked against its run: on the binding this process keeps
 * for it (BindingCache) when every check passes on that, otherwise on a
 * fresh read, so a refusal is always the one a fresh read gives.
 */
async function checkAgainstRun(deps: ApprovalDeps, runId: string, signed: SignedDocument, now: Date): Promise<{ run: GateRun; valid: ValidApproval }> {
  const cached = deps.bindings?.get(runId);
  if (cached) {
    try {
      return { run: cached, valid: checkArrival(signed, cached, now) };
    } catch {
      // Judged again below, on what Postgres holds now.
    }
  }
  const run = await loadGateRun(deps.pool, runId);
  if (!run) throw refusal('RUN_UNKNOWN', `no run ${runId}`);
  const valid = checkArrival(signed, run, now);
  deps.bindings?.remember(run);
  return { run, valid };
}

/** The binding checks at arrival, and the early answer on the window (storeDecision decides it again under the run's lock, in the database's clock). */
function checkArrival(signed: SignedDocument, run: GateRun, now: Date): ValidApproval {
  const valid = checkBinding(signed, { run, now, stage: 'submit' });
  if (run.windowEndsAt && now >= run.windowEndsAt) {
    throw refusal('APPROVAL_RUN_NOT_AWAITING', `the approval window of run ${run.runId} ended at ${run.windowEndsAt.toISOString()}`);
  }
  return valid;
}

/**
 * Counts the run's unconsumed approvals and, when SG_1 (with quorum) and
 * EXEC are both valid, promotes the gate. Outcome null: not complete yet.
 */
export async function releaseIfApproved(
  deps: ApprovalDeps,
  run: GateRun,
  now: Date,
  waitMs = deps.releaseWaitMs,
): Promise<{ tally: GateTally; outcome: ReleaseOutcome | null }> {
  return releaseIfTallied(deps, run, await listDecisions(deps.pool, run.runId, 'unconsumed'), now, waitMs);
}

/**
 * releaseIfApproved over approvals already read: every one is validated
 * again here, except the one this call has just validated and stored
 * (justStored, with the run's gate_handoff its store answered).
 */
async function releaseIfTallied(
  deps: ApprovalDeps,
  run: GateRun,
  rows: StoredDecision[],
  now: Date,
  waitMs: number,
  justStored?: { id: number; approval: ValidApproval; handoff: string },
): Promise<{ tally: GateTally; outcome: ReleaseOutcome | null }> {
  const tally = tallyDecisions(rows, { keys: deps.keys, run, now, stage: 'gate', quorum: deps.quorum, justStored });
  if (!tally.complete) return { tally, outcome: null };
  // What the store read is handed to the gate, which then need not read it again (shared/approval/handoff.ts).
  const outcome = await releaseGate(deps.gateQueue, run.runId, { waitMs, ...(justStored && { handoff: justStored.handoff }) });
  if (outcome === 'gone') deps.log.error({ run_id: run.runId }, 'approvals are complete but the gate job is missing or failed');
  return { tally, outcome };
}
