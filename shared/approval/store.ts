import { isPgError } from '../db/errors.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { formatUtc } from './document.js';
import { refusal } from './refusals.js';
import type { ValidApproval } from './validate.js';

/**
 * Stores a validated approval as a review_decision, audits it, and for an
 * EXEC grant turns the kill switch on for exactly that run: one call of
 * cutter_governance.store_approval (shared/db/functions/store_approval.sql),
 * one transaction, with the run row locked, so concurrent submissions for a
 * run are taken one at a time and a refusal leaves nothing behind. The
 * nonce's single use is enforced by the UNIQUE constraint, so it also holds
 * across runs and processes.
 */

type Outcome = 'stored' | 'not_awaiting' | 'window_over' | 'nonce_replayed' | 'key_already_used' | 'switch_busy';

interface StoreRow {
  outcome: Outcome;
  decision_id: string | null;
  run_status: string | null;
  window_ends_at: Date | null;
  other_run_id: string | null;
}

/** Stores the decision (a rejection ends the run rejected); returns its id. Throws a 409 refusal on a replay, a key used twice, a busy switch or a run no longer awaiting approval. */
export async function storeDecision(pool: Pool | PoolClient, approval: ValidApproval): Promise<number> {
  const { doc, key, envelope } = approval;
  const actor = `sovereign:${key.name}`;
  const detail = {
    gate: doc.gate,
    key_id: key.keyId,
    key_name: key.name,
    nonce: doc.nonce,
    plan_sha256: doc.planSha256,
    expires_utc: formatUtc(doc.expiresUtc),
  };
  // A rejection (gate REJECT) ends the run in the same call: stop_run.
  const reason = doc.allowance.kind === 'reject' ? doc.allowance.reason : null;
  let row: StoreRow | undefined;
  try {
    const { rows } = await pool.query<StoreRow>(
      'SELECT * FROM cutter_governance.store_approval($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)',
      [doc.runId, doc.gate, key.keyId, key.name, envelope.document, envelope.signature, doc.nonce, doc.planSha256, doc.signedUtc, doc.expiresUtc, actor, JSON.stringify(detail), reason],
    );
    row = rows[0];
  } catch (err) {
    // A concurrent twin that got past the checks (under another run's lock) still hits the constraints.
    if (isPgError(err, '23505')) throw await refusalForConstraint(pool, err, approval);
    throw err;
  }
  if (row?.outcome !== 'stored') throw refusalFor(row, approval);
  return Number(row.decision_id);
}

/** The refusal for a check that failed inside store_approval; nothing was written. */
function refusalFor(row: StoreRow | undefined, { doc, key }: ValidApproval) {
  switch (row?.outcome) {
    case 'window_over':
      return refusal('APPROVAL_RUN_NOT_AWAITING', `the approval window of run ${doc.runId} ended at ${row.window_ends_at?.toISOString() ?? '?'}`);
    case 'nonce_replayed':
      return refusal('APPROVAL_NONCE_REPLAYED', `nonce ${doc.nonce} was already used (run ${row.other_run_id ?? '?'}): every approval is single-use`);
    case 'key_already_used':
      return refusal('APPROVAL_KEY_ALREADY_USED', `key ${key.keyId} (${key.name}) has already given ${doc.gate} for run ${doc.runId}: a quorum needs distinct keys`);
    case 'switch_busy':
      return refusal('APPROVAL_SWITCH_BUSY', `the kill switch is on for run ${row.other_run_id ?? '?'} until that run ends or its grant expires: submit this EXEC grant afterwards`);
    default:
      return refusal('APPROVAL_RUN_NOT_AWAITING', `run ${doc.runId} is ${row?.run_status ?? 'gone'}, not awaiting_approval`);
  }
}

/**
 * The refusal for a unique violation: a twin under another run's lock (the
 * same nonce submitted for two runs at once) passed the checks while the
 * first was not yet committed. What it repeats is read again now: the same
 * nonce is a replay whichever constraint PostgreSQL happened to check first.
 */
async function refusalForConstraint(pool: Pool | PoolClient, err: unknown, { doc, key }: ValidApproval) {
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
