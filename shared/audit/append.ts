import type { Pool, PoolClient } from '../db/pool.js';

/** One audit event; the database assigns seq, time and the chain hashes. */
export interface AuditEvent {
  actor: string;
  kind: string;
  runId?: string | null;
  detail?: Record<string, unknown>;
}

/** Appends an event (inside the caller's transaction when given a client). */
export async function appendAudit(db: Pool | PoolClient, event: AuditEvent): Promise<number> {
  const result = await db.query<{ seq: number }>(
    `INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
     VALUES (0, now(), $1, $2, $3, $4::jsonb, repeat('0', 64), repeat('0', 64))
     RETURNING seq`,
    [event.actor, event.kind, event.runId ?? null, JSON.stringify(event.detail ?? {})],
  );
  return result.rows[0]?.seq ?? 0;
}
