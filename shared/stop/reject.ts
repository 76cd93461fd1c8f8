import { checkSubmission, acceptApproval, type ApprovalDeps, type SubmitAnswer } from '../approval/submit.js';
import { storeDecision } from '../approval/store.js';
import type { ValidApproval } from '../approval/validate.js';
import { withTransaction } from '../db/pool.js';
import { removeRunJobs } from '../jobs/cleanup.js';
import { saveStoppedReport } from './cancel.js';

/**
 * What the approval endpoint does with a signed decision (DESIGN §3, §5): an
 * SG_1 approval or EXEC grant is stored and may release the gate; a
 * rejection (gate REJECT) passes the same rules and ends the run rejected.
 */
export async function submitDecision(deps: ApprovalDeps, runId: string, body: unknown): Promise<SubmitAnswer> {
  const checked = await checkSubmission(deps, runId, body);
  return checked.valid.doc.gate === 'REJECT' ? rejectRun(deps, checked.valid) : acceptApproval(deps, checked);
}

/**
 * A valid rejection: stored, and the run ended rejected, in one commit with
 * its report (store_approval calls stop_run under the run's lock, after the
 * same checks as an approval's); then the run's jobs leave the queues.
 */
async function rejectRun(deps: ApprovalDeps, valid: ValidApproval): Promise<SubmitAnswer> {
  const runId = valid.doc.runId;
  const decisionId = await withTransaction(deps.pool, async (tx) => {
    const id = await storeDecision(tx, valid);
    await saveStoppedReport(tx, runId);
    return id;
  });
  // The rejection stands once committed; jobs Redis kept would be removed by the first worker that meets them (the run has ended).
  const active = await removeRunJobs(deps.queues, runId).catch((err: unknown) => {
    deps.log.error({ err, run_id: runId }, 'run rejected, but its jobs could not be removed from Redis now');
    return [];
  });
  deps.log.info({ run_id: runId, key_id: valid.key.keyId, decision_id: decisionId, active_jobs: active }, 'run rejected');
  return {
    accepted: true,
    gate: 'REJECT',
    decision_id: decisionId,
    rejected: true,
    released: false,
    waiting_for: [],
    sg_1: { valid_keys: 0, quorum: deps.quorum },
    exec_granted: false,
  };
}
