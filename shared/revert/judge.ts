import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import type { DriftedUnit } from '../runs/revert-skipped.js';
import { inFlight } from '../runs/status.js';

export type { DriftedUnit };

/**
 * Whether a run can be reverted (docs/undo.md), and what stops its revert:
 * a unit changed since (judged where the input is computed: input.ts), or
 * nothing left to revert. `cutter revert` asks before it enqueues, and
 * discover again with the input it stages.
 */

type Db = Pool | PoolClient;

/** How a run's units stand for its revert. */
export interface RevertJudgement {
  /** The units its plan changed. */
  items: number;
  /** Those changed since, in byte order of key. */
  drifted: DriftedUnit[];
}

/**
 * Refuses, naming why, a run that is no live run that succeeded (a dry run
 * applied nothing; a run that failed, expired or was cancelled or rejected
 * has no applied plan to invert). Returns its target.
 */
export async function requireRevertible(db: Db, runId: string): Promise<{ target: string; corpus: string }> {
  const { rows } = await db.query<{ mode: string; status: string; target: string; corpus: string; failed_phase: string | null; applied: boolean }>(
    `SELECT r.mode, r.status, r.target, r.corpus, r.failed_phase,
            EXISTS (SELECT 1 FROM cutter_governance.execution_ledger l WHERE l.run_id = r.run_id) AS applied
       FROM cutter_governance.run r WHERE r.run_id = $1`,
    [runId],
  );
  const run = rows[0];
  if (!run) throw new CutterError('RUN_UNKNOWN', `no run ${runId}`, { kind: 'bad_input' });
  const refuse = (why: string) => new CutterError('REVERT_NOT_REVERTIBLE', `run ${runId} cannot be reverted: ${why}`, { kind: 'refused' });
  if (run.mode !== 'live') throw refuse('it is a dry run, which applied nothing');
  if (run.status !== 'succeeded') {
    if (inFlight(run.status)) throw refuse(`it is still ${run.status}; only a live run that succeeded can be reverted (wait for it to end, or cancel it)`);
    const applied = run.applied
      ? ` Its plan was applied but the run ended ${run.status}${run.failed_phase ? ` in ${run.failed_phase}` : ''}: restore its backup instead (docs/undo.md)`
      : '';
    throw refuse(`it ended ${run.status}; only a live run that succeeded can be reverted.${applied}`);
  }
  if (!run.applied) throw refuse('the execution ledger has no record of its plan being applied');
  return { target: run.target, corpus: run.corpus };
}

/** "KEY (changed by run R)" or "KEY (changed with no run recorded)", the first `limit`, then how many more. */
export function describeDrift(drifted: readonly DriftedUnit[], limit = 50): string {
  const listed = drifted
    .slice(0, limit)
    .map((d) => `${d.key} (${d.changed_by_run ? `changed by run ${d.changed_by_run}` : 'changed with no run recorded'})`);
  return `${listed.join(', ')}${drifted.length > limit ? `, and ${drifted.length - limit} more` : ''}`;
}

/**
 * What stops a revert before anything is written: a drifted unit unless the
 * operator leaves them out (REVERT_DRIFTED, naming each key and the run that
 * changed it), or nothing left to revert (REVERT_NOTHING_LEFT).
 */
export function refuseRevert(revertOf: string, judged: RevertJudgement, skipDrifted: boolean): void {
  const n = judged.drifted.length;
  if (n > 0 && !skipDrifted) {
    throw new CutterError(
      'REVERT_DRIFTED',
      `run ${revertOf} cannot be reverted as it is: ${n} of the ${judged.items} unit(s) it changed changed again after it: ${describeDrift(judged.drifted)}. ` +
        'A revert never overwrites a later change; --skip-drifted reverts the others and lists these as skipped',
      { kind: 'refused' },
    );
  }
  if (judged.items - n === 0) {
    throw new CutterError(
      'REVERT_NOTHING_LEFT',
      judged.items === 0
        ? `run ${revertOf} changed no unit: there is nothing to revert`
        : `every unit run ${revertOf} changed has changed again since (${describeDrift(judged.drifted)}): there is nothing left to revert`,
      { kind: 'refused' },
    );
  }
}

