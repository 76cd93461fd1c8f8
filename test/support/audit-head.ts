import { formatHead, headInReport } from '../../shared/audit/head.js';
import type { Pool } from '../../shared/db/pool.js';

/** The audit chain head a run's stored report names, as `SEQ:HASH`. */
export async function reportHead(pool: Pool, runId: string): Promise<string> {
  const { rows } = await pool.query<{ report: string | null }>('SELECT report FROM cutter_governance.run WHERE run_id = $1', [runId]);
  return formatHead(headInReport(rows[0]?.report ?? '', `the report of ${runId}`));
}

/** `SEQ:HASH` of the last audit row of this kind (of this run, when given). */
export async function auditRowHead(pool: Pool, kind: string, runId?: string): Promise<string> {
  const { rows } = await pool.query<{ head: string }>(
    `SELECT seq || ':' || hash AS head FROM cutter_governance.audit_event
      WHERE kind = $1 AND ($2::text IS NULL OR run_id = $2) ORDER BY seq DESC LIMIT 1`,
    [kind, runId ?? null],
  );
  const head = rows[0]?.head;
  if (!head) throw new Error(`no ${kind} audit row${runId ? ` of run ${runId}` : ''}`);
  return head;
}
