import { appendAudit } from '../../shared/audit/append.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import { buildReport } from '../../shared/runs/report.js';
import { runChecks, saveVerifyResult } from '../../shared/runs/checks.js';
import { finishRun, saveReport } from '../../shared/runs/store.js';
import { discardStagedSnapshot } from '../../shared/snapshot/stage.js';
import { releaseCorpusLock } from '../../shared/targets/lock.js';
import type { PhaseWorker } from '../context.js';

/**
 * G8: since the baseline, the run's corpus was written by its own apply and
 * exactly as the plan says (live) or not at all (dry), read from the
 * database's record of writes (docs/proof.md); other corpora are other runs'
 * proof. A live revert also proves each unit it reverted is as it was before
 * the run it reverts. Writes verify_result
 * and releases the corpus lock; the commit that records the phase completed
 * also ends the run with this verdict and its report, so whoever sees the
 * run ended sees why.
 */
export const verifyWorker: PhaseWorker<'verify'> = {
  process: async ({ run }, deps) => {
    const checks = await runChecks(deps.pool, run);
    const passed = checks.every((c) => c.passed);
    await saveVerifyResult(deps.pool, run.run_id, checks);
    await reachMoment('verify.middle', run.run_id); // verify_result stored, the lock still held
    const verdict = passed ? 'PASS' : 'FAIL';
    await releaseCorpusLock(deps.pool, run.run_id);
    await discardStagedSnapshot(deps.pool, run.run_id);
    return { verdict, checks: checks.length, failed: checks.filter((c) => !c.passed).map((c) => c.name) };
  },
  complete: async (tx, run, result) => {
    const ended = await finishRun(tx, { runId: run.run_id, verdict: result.verdict });
    // The verdict's audit row commits with the run's end, and only when this ended it: it announces
    // run.succeeded or run.failed. The report follows it: it names the chain's head, this row.
    if (ended) await appendAudit(tx, { actor: 'worker', kind: 'run.verified', runId: run.run_id, detail: { verdict: result.verdict, checks: result.checks } });
    await saveReport(tx, run.run_id, await buildReport(tx, run.run_id));
  },
};
