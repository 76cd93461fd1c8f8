import type { Pool } from '../db/pool.js';

export interface AuditVerifyResult {
  ok: boolean;
  rows: number;
  /** The first row that breaks the chain, and why. */
  firstBad?: { seq: number; reason: string };
}

const ZERO_HASH = '0'.repeat(64);
const BATCH = 5000;

/**
 * Walks the chain in order. The expected hash is recomputed here with its own
 * copy of the canonical form (not the stored function, which an attacker with
 * DDL rights could have replaced) and compared with the stored one.
 */
export async function verifyAuditChain(pool: Pool): Promise<AuditVerifyResult> {
  let previousHash = ZERO_HASH;
  let previousSeq = 0;
  let rows = 0;
  for (;;) {
    const batch = await pool.query<{ seq: number; prev_hash: string; hash: string; recomputed: string }>(
      `SELECT seq, prev_hash, hash,
              encode(sha256(convert_to(concat_ws('|', seq::text,
                to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                actor, kind, coalesce(run_id, ''), detail::text, prev_hash), 'UTF8')), 'hex') AS recomputed
         FROM cutter_governance.audit_event
        WHERE seq > $1
        ORDER BY seq
        LIMIT $2`,
      [previousSeq, BATCH],
    );
    for (const row of batch.rows) {
      rows += 1;
      if (row.seq !== previousSeq + 1) {
        return { ok: false, rows, firstBad: { seq: row.seq, reason: `sequence gap: expected row ${previousSeq + 1}` } };
      }
      if (row.prev_hash !== previousHash) {
        return { ok: false, rows, firstBad: { seq: row.seq, reason: 'prev_hash does not match the previous row' } };
      }
      if (row.recomputed !== row.hash) {
        return { ok: false, rows, firstBad: { seq: row.seq, reason: 'row content does not match its hash (edited)' } };
      }
      previousHash = row.hash;
      previousSeq = row.seq;
    }
    if (batch.rows.length < BATCH) return { ok: true, rows };
  }
}
