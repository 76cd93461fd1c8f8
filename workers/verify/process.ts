import { appendAudit } from '../../shared/audit/append.js';
import { CutterError } from '../../shared/errors.js';
import { dryRunChecks, liveRunChecks } from '../../shared/runs/checks.js';
import type { TableFingerprint } from '../../shared/runs/fingerprint.js';
import { getPhases } from '../../shared/runs/store.js';
import { discardStagedSnapshot } from '../../shared/snapshot/stage.js';
import { releaseCorpusLock } from '../../shared/targets/lock.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseProcessor } from '../context.js';

interface Baseline {
  tables: TableFingerprint[];
  execution_enabled: boolean;
}

/**
 * G8: the database is exactly what the plan says (live) or exactly what it
 * was (dry). Writes verify_result and releases the corpus lock; the phase
 * runner then ends the run with this verdict and its report in one transaction.
 */
export const processVerify: PhaseProcessor = async ({ run }, deps) => {
  const baseline = run.baseline as Baseline | null;
  if (!baseline?.tables) throw new CutterError('BASELINE_MISSING', `run ${run.run_id} has no precheck baseline to verify against`);
  let checks;
  if (run.mode === 'dry') {
    checks = await dryRunChecks(deps.pool, run.run_id, baseline.tables, baseline.execution_enabled);
  } else {
    const cutplan = (await getPhases(deps.pool, run.run_id)).find((p) => p.phase === 'cutplan');
    const outsideAtPlan = cutplan?.summary['outside_fingerprint'] as TableFingerprint[] | undefined;
    if (!outsideAtPlan) throw new CutterError('PLAN_FINGERPRINT_MISSING', `run ${run.run_id}: cutplan recorded no fingerprint`);
    checks = await liveRunChecks(deps.pool, { runId: run.run_id, corpus: run.corpus, baseline: baseline.tables, outsideAtPlan });
  }
  const passed = checks.every((c) => c.passed);
  await deps.pool.query(
    `INSERT INTO cutter_governance.verify_result (run_id, passed, checks) VALUES ($1, $2, $3::jsonb)
     ON CONFLICT (run_id) DO UPDATE SET passed = $2, checks = $3::jsonb, verified_at = now()`,
    [run.run_id, passed, JSON.stringify(checks)],
  );
  await reachMoment('verify.middle', run.run_id); // verify_result stored, the lock still held
  const verdict = passed ? 'PASS' : 'FAIL';
  await releaseCorpusLock(deps.pool, run.run_id);
  await discardStagedSnapshot(deps.pool, run.run_id);
  await appendAudit(deps.pool, { actor: 'worker', kind: 'run.verified', runId: run.run_id, detail: { verdict, checks: checks.length } });
  return { verdict, checks: checks.length, failed: checks.filter((c) => !c.passed).map((c) => c.name) };
};
