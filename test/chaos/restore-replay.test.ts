import { describe, expect, it } from 'vitest';
import { restoreBackup } from '../../shared/backup/restore.js';
import { handAddedExecute, runAppliedLive, trustLocalSovereign } from '../support/applied-run.js';
import { createRunEnv } from '../support/run-env.js';
import { recordRunTrials, trials } from './support/outcomes.js';

/**
 * The replay a restore used to open: a live run applied, its own backup
 * (taken after its gate consumed the approvals and the EXEC grant turned the
 * switch on) restored in place with --force while the fleet runs, then an
 * execute job added by hand for that run. The restore put the corpus back to
 * before the cut (the run's record and ledger row stay); the same approvals
 * must never cut it again.
 */
const TRIALS = trials(1, 3);

interface Trial {
  ended: boolean;
  /** The run's plan written again after the restore (lifecycle rows, versions, a second ledger row, any corpus change). */
  double: boolean;
  code: string | null;
}

async function replayTrial(i: number): Promise<Trial> {
  const env = await createRunEnv(`rstreplay${i}`);
  try {
    const sovereign = trustLocalSovereign(env);
    await env.startFleet();
    const applied = await runAppliedLive(env, sovereign);
    await restoreBackup(applied.backupFile, { into: env.db.url, force: true, gnupgHome: env.cfg.GNUPGHOME });
    const restored = await env.corpus();
    await handAddedExecute(env, applied.runId, `${applied.runId}.execute.replay`);
    const { rows } = await env.db.pool.query<{ status: string; error_code: string | null; log: number; versions: number; ledger: number }>(
      `SELECT r.status, r.error_code,
              (SELECT count(*)::int FROM public.iu_lifecycle_log l WHERE l.run_id = r.run_id) AS log,
              (SELECT count(*)::int FROM public.unit_version v WHERE v.created_by_run = r.run_id) AS versions,
              (SELECT count(*)::int FROM cutter_governance.execution_ledger e WHERE e.run_id = r.run_id) AS ledger
         FROM cutter_governance.run r WHERE r.run_id = $1`,
      [applied.runId],
    );
    const row = rows[0];
    if (!row) throw new Error(`run ${applied.runId} is gone after the restore`);
    const changed = JSON.stringify(await env.corpus()) !== JSON.stringify(restored);
    return {
      ended: ['succeeded', 'failed', 'expired', 'abandoned'].includes(row.status),
      double: row.log > 0 || row.versions > 0 || row.ledger !== 1 || changed,
      code: row.error_code,
    };
  } finally {
    await env.close();
  }
}

describe('restore of an applied run’s backup', () => {
  it('in place with a fleet running, then a hand-added execute job: the plan is never applied again', async () => {
    const results: Trial[] = [];
    for (let i = 0; i < TRIALS; i += 1) results.push(await replayTrial(i));
    const codes = [...new Set(results.map((r) => r.code ?? 'none'))].join(', ');
    recordRunTrials({
      group: 'restore',
      fault: "in-place restore (--force) of an applied run's own backup, then a hand-added execute job",
      tries: results.length,
      ended: results.filter((r) => r.ended).length,
      doubles: results.filter((r) => r.double).length,
      notes: `the run kept its end (${codes === 'none' ? 'succeeded' : codes}); ledger row kept, switch off`,
    });
    expect(results.map((r) => [r.ended, r.double])).toEqual(results.map(() => [true, false]));
  }, 240_000 * TRIALS);
});
