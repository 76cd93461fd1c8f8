import { appendAudit } from '../../shared/audit/append.js';
import { CutterError } from '../../shared/errors.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import { buildReport } from '../../shared/runs/report.js';
import { revertChecks } from '../../shared/revert/checks.js';
import { dryRunChecks, liveRunChecks, saveVerifyResult } from '../../shared/runs/checks.js';
import { completedResult, finishRun, getPhases, runBaseline, saveReport } from '../../shared/runs/store.js';
import { discardStagedSnapshot } from '../../shared/snapshot/stage.js';
import { releaseCorpusLock } from '../../shared/targets/lock.js';
import type { PhaseWorker } from '../context.js';

/**
 * G8: the run's corpus is exactly what the plan says (live) or exactly what
 * it was (dry); other corpora are other runs' proof. A live revert also
 * proves each unit it reverted is as it was before the run it reverts. Writes verify_result
 * and releases the corpus lock; the commit that records the phase completed
 * also ends the run with this verdict and its report, so whoever sees the
 * run ended sees why.
 */
export const verifyWorker: PhaseWorker<'verify'> = {
  process: async ({ run }, deps) => {
    const baseline = runBaseline(run);
    if (!baseline) throw new CutterError('BASELINE_MISSING', `run ${run.run_id} has no precheck baseline to verify against`);
    // A baseline of another scope cannot be compared with this corpus's counts.
    if (baseline.corpus !== run.corpus) {
      throw new CutterError('BASELINE_SCOPE', `run ${run.run_id}: the baseline covers corpus ${baseline.corpus}, the run corpus ${run.corpus}`);
    }
    let checks;
    if (run.mode === 'dry') {
      checks = await dryRunChecks(deps.pool, { runId: run.run_id, corpus: run.corpus, baseline: baseline.tables, switchForRun: baseline.execution_enabled_for_run });
    } else {
      const plan = completedResult(await getPhases(deps.pool, run.run_id), 'cutplan');
      if (!plan) throw new CutterError('PLAN_FINGERPRINT_MISSING', `run ${run.run_id}: cutplan recorded no fingerprint`);
      // A revert also proves that what it reverted is as it was before the run it reverts (read side by side).
      const [live, revert] = await Promise.all([
        liveRunChecks(deps.pool, { runId: run.run_id, corpus: run.corpus, baseline: baseline.tables, outsideAtPlan: plan.outside_fingerprint }),
        run.revert_of === null ? [] : revertChecks(deps.pool, { runId: run.run_id, revertOf: run.revert_of }),
      ]);
      checks = [...live, ...revert];
    }
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
