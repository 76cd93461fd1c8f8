import type { Pool } from '../db/pool.js';
import { loadGateRun } from './binding.js';
import type { TrustedKeys } from './keys.js';
import { listDecisions, tallyDecisions } from './tally.js';

/**
 * The approval part of a run's API view: what a signer needs to write an
 * allowance that covers the plan, and which approvals are in. Signatures
 * are left out; the documents are public text.
 */
export interface ApprovalSummary {
  window_ends_utc: string | null;
  quorum: number;
  /** The smallest SG_1 allowance that covers the plan. */
  allowance_needed: { max_units: number; transitions: string[] } | null;
  /** While awaiting approval: SG_1 and/or EXEC still missing (valid, unconsumed); [] otherwise. */
  waiting_for: string[];
  decisions: {
    id: number;
    gate: string;
    key_id: string;
    key_name: string;
    received_utc: string;
    expires_utc: string;
    consumed_utc: string | null;
    /** A rejection's signed reason; null for an approval. */
    reason: string | null;
  }[];
}

/** The approval summary of a run, or null when there is no such run. */
export async function approvalSummary(pool: Pool, runId: string, keys: TrustedKeys, quorum: number): Promise<ApprovalSummary | null> {
  const run = await loadGateRun(pool, runId);
  if (!run) return null;
  const { rows } = await pool.query<{
    id: number;
    gate: string;
    key_id: string;
    key_name: string;
    received_utc: Date;
    expires_utc: Date;
    consumed_utc: Date | null;
    reason: string | null;
  }>(
    `SELECT id, gate, key_id, key_name, received_utc, expires_utc, consumed_utc, reason
       FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY id`,
    [runId],
  );
  let waitingFor: string[] = [];
  if (run.status === 'awaiting_approval') {
    const unconsumed = await listDecisions(pool, runId, 'unconsumed');
    waitingFor = tallyDecisions(unconsumed, { keys, run, now: new Date(), stage: 'gate', quorum }).waitingFor;
  }
  return {
    window_ends_utc: run.windowEndsAt?.toISOString() ?? null,
    quorum,
    allowance_needed: run.scope ? { max_units: run.scope.unitCount, transitions: [...run.scope.transitions] } : null,
    waiting_for: waitingFor,
    decisions: rows.map((r) => ({
      id: r.id,
      gate: r.gate,
      key_id: r.key_id,
      key_name: r.key_name,
      received_utc: r.received_utc.toISOString(),
      expires_utc: r.expires_utc.toISOString(),
      consumed_utc: r.consumed_utc?.toISOString() ?? null,
      reason: r.reason,
    })),
  };
}
