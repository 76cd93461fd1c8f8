import type { Pool, PoolClient } from '../db/pool.js';

/** One audit event; the database assigns seq, time and the chain hashes. */
export interface AuditEvent {
  actor: string;
  kind: string;
  runId?: string | null;
  detail?: Record<string, unknown>;
}

/**
 * Appends an event (inside the caller's transaction when given a client)
 * through cutter_governance.append_audit, which refuses the kinds only the
 * database's own functions write (gate.released, execute.applied, …).
 */
export async function appendAudit(db: Pool | PoolClient, event: AuditEvent): Promise<number> {
  const result = await db.query<{ seq: number }>('SELECT cutter_governance.append_audit($1, $2, $3, $4::jsonb) AS seq', [
    event.actor,
    event.kind,
    event.runId ?? null,
    JSON.stringify(event.detail ?? {}),
  ]);
  return result.rows[0]?.seq ?? 0;
}
