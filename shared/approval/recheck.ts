import type { PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { loadTrustedKeys } from './keys.js';
import { listDecisions, tallyDecisions } from './tally.js';
import type { PlanScope } from '../plan/scope.js';

/**
 * Execute's own look at the approvals, just before it writes (DESIGN §3): a
 * job in the execute queue proves nothing (Bull Board's "add job", a script),
 * so execute needs the approvals the gate consumed for this run, still
 * verifying against the trusted keys and bound to this run, target and plan,
 * and every SG_1 allowance covering what is about to be written.
 */

/** Where the trusted keys are and how many distinct SG_1 keys a run needs. */
export interface SovereignPolicy {
  keysSource: string | undefined;
  quorum: number;
}

export interface ExecutionApprovals {
  sg1Keys: string[];
  execKeys: string[];
}

/** Throws EXECUTE_NOT_APPROVED unless the consumed approvals still make a quorum and an EXEC grant. */
export async function recheckApprovals(
  client: PoolClient,
  run: { runId: string; target: string; operator: string; planSha256: string; scope: PlanScope },
  policy: SovereignPolicy,
): Promise<ExecutionApprovals> {
  const keys = await loadTrustedKeys(policy.keysSource);
  const enqueuedBy = await enqueuerLogin(client, run.runId);
  const rows = await listDecisions(client, run.runId, 'consumed');
  const tally = tallyDecisions(rows, {
    keys,
    run: { ...run, enqueuedBy, status: 'running' },
    now: new Date(),
    stage: 'execute',
    quorum: policy.quorum,
  });
  if (!tally.complete) {
    const reasons = tally.invalid.map((i) => `decision ${i.id} (${i.gate}): ${i.code}: ${i.message}`);
    throw new CutterError(
      'EXECUTE_NOT_APPROVED',
      `run ${run.runId} has no consumed, valid ${tally.waitingFor.join(' and ')} (SG_1 quorum ${policy.quorum}, ${tally.sg1.length} valid)` +
        `${reasons.length ? `; ${reasons.join('; ')}` : ''}: execute did nothing`,
    );
  }
  return { sg1Keys: tally.sg1.map((a) => a.key.keyId), execKeys: tally.exec.map((a) => a.key.keyId) };
}

/**
 * The login that enqueued the run, read here rather than taken from the
 * caller: the no-self-approval rule needs it, and execute's own read of the
 * run need not know that.
 */
async function enqueuerLogin(client: PoolClient, runId: string): Promise<string> {
  const { rows } = await client.query<{ enqueued_by: string }>('SELECT enqueued_by FROM cutter_governance.run WHERE run_id = $1', [runId]);
  const row = rows[0];
  if (!row) throw new CutterError('EXECUTE_NOT_APPROVED', `no run ${runId}: execute did nothing`);
  return row.enqueued_by;
}
