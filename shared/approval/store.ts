import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/migrate.js';
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { WINDOW_ENDS_AT_SQL } from './binding.js';
import { formatUtc } from './document.js';
import { refusal } from './refusals.js';
import type { ValidApproval } from './validate.js';

/**
 * Stores a validated approval as a review_decision, audits it, and for an
 * EXEC grant turns the kill switch on for exactly that run. One transaction,
 * with the run row locked, so concurrent submissions for a run are taken one
 * at a time and a refusal leaves nothing behind. The nonce's single use is
 * enforced by the UNIQUE constraint, so it also holds across runs and processes.
 */

/** Stores the decision; returns its id. Throws a 409 refusal on a replay or a state change meanwhile. */
export async function storeDecision(pool: Pool, approval: ValidApproval): Promise<number> {
  const { doc, key, envelope } = approval;
  try {
    return await withTransaction(pool, async (client) => {
      await lockRunAndRefuseReuse(client, approval);
      if (doc.gate === 'EXEC') await refuseBusySwitch(client, doc.runId);
      // The decision and, for EXEC, the switch in one statement.
      const inserted = await client.query<{ id: number }>(
        `WITH decision AS (
           INSERT INTO cutter_governance.review_decision
             (run_id, gate, key_id, key_name, document, signature, nonce, plan_sha256, signed_utc, expires_utc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           RETURNING id
         ), armed AS (
           UPDATE cutter_governance.execution_switch
              SET enabled = true, run_id = $1, expires_at = $10, changed_at = now(), changed_by = $11
            WHERE $2 = 'EXEC'
         )
         SELECT id FROM decision`,
        [doc.runId, doc.gate, key.keyId, key.name, envelope.document, envelope.signature, doc.nonce, doc.planSha256, doc.signedUtc, doc.expiresUtc, `sovereign:${key.name}`],
      );
      const id = inserted.rows[0]?.id ?? 0;
      await appendAudit(client, {
        actor: `sovereign:${key.name}`,
        kind: doc.gate === 'EXEC' ? 'approval.exec_granted' : 'approval.accepted',
        runId: doc.runId,
        detail: {
          gate: doc.gate,
          decision_id: id,
          key_id: key.keyId,
          key_name: key.name,
          nonce: doc.nonce,
          plan_sha256: doc.planSha256,
          expires_utc: formatUtc(doc.expiresUtc),
        },
      });
      return id;
    });
  } catch (err) {
    // A concurrent twin that got past the checks below still hits the constraints.
    if (isPgError(err, '23505')) throw await refusalForConstraint(pool, err, approval);
    throw err;
  }
}

/**
 * Locks the run row (approvals of one run are taken one at a time) and reads
 * what would make this approval a reuse. The checks give the clear message;
 * the UNIQUE constraints are what make them hold under any concurrency.
 */
async function lockRunAndRefuseReuse(client: PoolClient, { doc, key }: ValidApproval): Promise<void> {
  // The window is checked here, under the lock and in the database's clock,
  // because received_utc is this transaction's now() and the gate counts only
  // approvals received before the window's end. The caller's earlier check
  // (its own clock, before a round trip or two) can pass a few ms before the
  // end while this transaction starts after it: the approval would be stored
  // and answered 201, and the gate would then ignore it and expire the run.
  // One round trip: the run locked and checked, and any earlier use of this nonce or of this key for this gate.
  const { rows } = await client.query<{ status: string; window_ends_at: Date | null; window_over: boolean; used_run_id: string | null; same_nonce: boolean | null }>(
    `SELECT r.status, w.ends_at AS window_ends_at, coalesce(w.ends_at <= now(), false) AS window_over,
            u.run_id AS used_run_id, u.same_nonce
       FROM cutter_governance.run r
      CROSS JOIN LATERAL (SELECT ${WINDOW_ENDS_AT_SQL} AS ends_at) w
       LEFT JOIN LATERAL (
         SELECT d.run_id, d.nonce = $2 AS same_nonce FROM cutter_governance.review_decision d
          WHERE d.nonce = $2 OR (d.run_id = $1 AND d.gate = $3 AND d.key_id = $4)
          ORDER BY (d.nonce = $2) DESC LIMIT 1) u ON true
      WHERE r.run_id = $1
        FOR UPDATE OF r`,
    [doc.runId, doc.nonce, doc.gate, key.keyId],
  );
  const row = rows[0];
  const status = row?.status;
  if (status !== 'awaiting_approval') {
    throw refusal('APPROVAL_RUN_NOT_AWAITING', `run ${doc.runId} is ${status ?? 'gone'}, not awaiting_approval`);
  }
  if (row?.window_over) {
    throw refusal('APPROVAL_RUN_NOT_AWAITING', `the approval window of run ${doc.runId} ended at ${row.window_ends_at?.toISOString() ?? '?'}`);
  }
  const hit = row?.used_run_id ? { run_id: row.used_run_id, same_nonce: row.same_nonce === true } : undefined;
  if (hit?.same_nonce) {
    throw refusal('APPROVAL_NONCE_REPLAYED', `nonce ${doc.nonce} was already used (run ${hit.run_id}): every approval is single-use`);
  }
  if (hit) {
    throw refusal('APPROVAL_KEY_ALREADY_USED', `key ${key.keyId} (${key.name}) has already given ${doc.gate} for run ${doc.runId}: a quorum needs distinct keys`);
  }
}

/**
 * The switch is one row: it may be on for one run at a time. Another live
 * run's unexpired grant keeps it; a grant of a run that has ended does not.
 * The row is locked, so two EXEC grants for different runs cannot both see it free.
 */
async function refuseBusySwitch(client: PoolClient, runId: string): Promise<void> {
  const { rows } = await client.query<{ run_id: string | null; busy: boolean }>(
    `SELECT s.run_id,
            (s.enabled AND s.expires_at > now() AND s.run_id <> $1
             AND r.status IN ('queued', 'running', 'awaiting_approval')) IS TRUE AS busy
       FROM cutter_governance.execution_switch s
       LEFT JOIN cutter_governance.run r ON r.run_id = s.run_id
        FOR UPDATE OF s`,
    [runId],
  );
  const row = rows[0];
  if (row?.busy) {
    throw refusal('APPROVAL_SWITCH_BUSY', `the kill switch is on for run ${row.run_id ?? '?'} until that run ends or its grant expires: submit this EXEC grant afterwards`);
  }
}

/**
 * The refusal for a unique violation. A twin that waited for the run's lock
 * read the earlier decisions before the first one committed, so what it
 * repeats is read again now: the same nonce is a replay whichever
 * constraint PostgreSQL happened to check first.
 */
async function refusalForConstraint(pool: Pool, err: unknown, { doc, key }: ValidApproval) {
  const used = await pool
    .query<{ run_id: string }>('SELECT run_id FROM cutter_governance.review_decision WHERE nonce = $1', [doc.nonce])
    .catch(() => null);
  const earlier = used?.rows[0];
  if (earlier) return refusal('APPROVAL_NONCE_REPLAYED', `nonce ${doc.nonce} was already used (run ${earlier.run_id}): every approval is single-use`);
  if ((err as { constraint?: string }).constraint === 'review_decision_one_per_key') {
    return refusal('APPROVAL_KEY_ALREADY_USED', `key ${key.keyId} (${key.name}) has already given ${doc.gate} for run ${doc.runId}`);
  }
  return refusal('APPROVAL_NONCE_REPLAYED', `nonce ${doc.nonce} was already used: every approval is single-use`);
}
