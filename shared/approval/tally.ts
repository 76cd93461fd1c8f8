import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool.js';
import { errorCode } from '../errors.js';
import type { ApprovalGate } from './document.js';
import type { TrustedKeys } from './keys.js';
import { validateSovereignApproval, type RunBinding, type ValidApproval, type ValidationStage } from './validate.js';

/**
 * Counts what the stored approvals of a run are worth right now. Nothing is
 * taken on trust from the time it was stored: every row is validated again
 * (signature, binding, expiry, allowance), so a key removed from
 * SOVEREIGN_KEYS or a document past its expiry no longer counts.
 */

export interface CountedApproval extends ValidApproval {
  id: number;
}

export interface GateTally {
  /** Valid SG_1 approvals, one per distinct key. */
  sg1: CountedApproval[];
  exec: CountedApproval[];
  quorum: number;
  complete: boolean;
  /** The gates still missing: "SG_1" (fewer than quorum distinct keys) and/or "EXEC". */
  waitingFor: ApprovalGate[];
  invalid: { id: number; gate: string; code: string; message: string }[];
}

/** A stored decision as PostgreSQL's jsonb_agg returns it (gate_reads): ids and times as JSON. */
export const storedDecisionJson = z
  .object({
    id: z.coerce.number().int().positive(),
    gate: z.enum(['SG_1', 'EXEC', 'REJECT']),
    key_id: z.string(),
    document: z.string(),
    signature: z.string(),
    nonce: z.string(),
    received_utc: z.coerce.date(),
    consumed_utc: z.coerce.date().nullable(),
  })
  .strict();
export type StoredDecision = z.infer<typeof storedDecisionJson>;

/** The stored decisions of a run, unconsumed ones (for the gate) or consumed ones (for execute). */
export async function listDecisions(db: Pool | PoolClient, runId: string, which: 'unconsumed' | 'consumed'): Promise<StoredDecision[]> {
  const { rows } = await db.query<StoredDecision>(
    `SELECT id, gate, key_id, document, signature, nonce, received_utc, consumed_utc
       FROM cutter_governance.review_decision
      WHERE run_id = $1 AND (consumed_utc IS NULL) = $2
      ORDER BY id`,
    [runId, which === 'unconsumed'],
  );
  return rows;
}

/** Re-validates each stored row and counts SG_1 keys against the quorum and EXEC grants. */
export function tallyDecisions(
  rows: StoredDecision[],
  ctx: { keys: TrustedKeys; run: RunBinding; now: Date; stage: ValidationStage; quorum: number },
): GateTally {
  const sg1 = new Map<string, CountedApproval>();
  const exec: CountedApproval[] = [];
  const invalid: GateTally['invalid'] = [];
  for (const row of rows) {
    try {
      const valid = validateSovereignApproval({ document: row.document, signature: row.signature, key_id: row.key_id }, ctx);
      // The columns the unique constraints work on must say what the signed text says.
      if (valid.doc.gate !== row.gate || valid.doc.nonce !== row.nonce) throw new Error('the stored gate or nonce differs from the signed document');
      // A rejection approves nothing (store_approval stores it consumed, so it never gets here).
      if (valid.doc.gate === 'REJECT') throw new Error('a rejection is not an approval');
      const counted = { ...valid, id: row.id };
      if (valid.doc.gate === 'EXEC') exec.push(counted);
      else if (!sg1.has(valid.key.keyId)) sg1.set(valid.key.keyId, counted);
    } catch (err) {
      invalid.push({ id: row.id, gate: row.gate, code: errorCode(err), message: (err as Error).message });
    }
  }
  const waitingFor: ApprovalGate[] = [];
  if (sg1.size < ctx.quorum) waitingFor.push('SG_1');
  if (exec.length === 0) waitingFor.push('EXEC');
  return { sg1: [...sg1.values()], exec, quorum: ctx.quorum, complete: waitingFor.length === 0, waitingFor, invalid };
}
