import type pg from 'pg';
import { appendAudit } from '../audit/append.js';
import type { PoolClient } from '../db/pool.js';
import { buildReport } from '../runs/report.js';
import { IN_FLIGHT_STATUSES } from '../runs/status.js';
import { saveReport } from '../runs/store.js';
import { discardStagedSnapshot } from '../snapshot/stage.js';
import { releaseCorpusLock } from '../targets/lock.js';

/**
 * What every restore settles in the database it restored into, in the
 * transaction that ends it, as the restoring (super)user. A restored
 * database never continues a run: the backup of a live run is taken after
 * its gate consumed the approvals and its EXEC grant turned the kill switch
 * on, so restored as it is that run would be at backup, armed, with no
 * ledger row; and a run in flight during an in-place restore took its
 * baseline of a corpus that is no longer there.
 *
 * - every run in flight ends `abandoned` (RUN_RESTORED), its corpus lock
 *   released, its staged snapshot dropped, a phase still active marked
 *   skipped, its report saying why;
 * - the kill switch is off;
 * - no approval of a run whose plan was applied stays unconsumed;
 * - after a whole-database restore, records of corpus writes whose
 *   transaction ids this server has not reached (made on another server)
 *   are stamped 0;
 * - one `backup.restored` audit row names the backup (file, sha256, the run
 *   that took it) and says what was restored and settled: always in place;
 *   after a whole-database restore only when it settled anything, so a
 *   backup restored whole with nothing in flight stays exactly the backup.
 */

export const RUN_RESTORED = 'RUN_RESTORED';
const ACTOR = 'cutter:backup-restore';

export interface SettleInput {
  file: string;
  sha256: string;
  /** The run whose backup phase took the file (the manifest's run_id); null for `cutter backup create`. */
  backupRunId: string | null;
  /** `corpus`: an in-place restore of the corpus tables; `database`: a whole database restored. */
  scope: 'corpus' | 'database';
  /** Rows restored per table. */
  tables: { name: string; rows: number }[];
}

export interface RestoreSettlement {
  scope: 'corpus' | 'database';
  runs_abandoned: { run_id: string; status: string; phase: string | null; applied: boolean }[];
  /** The run the kill switch was on (or left set) for, before it went off. */
  switch_was_for: string | null;
  approvals_consumed: number;
  /** Records of corpus writes restored from another server whose transaction ids this one had not reached (stamped 0). */
  writes_restamped: number;
  /** The backup.restored audit row's seq; null when nothing was settled after a whole-database restore (nothing written). */
  audit_seq: number | null;
}

/** True when the database holds cutter's corpus and governance tables. */
export async function holdsCutterSchema(db: pg.ClientBase): Promise<boolean> {
  const { rows } = await db.query<{ found: boolean }>(
    `SELECT to_regclass('public.information_unit') IS NOT NULL
        AND to_regclass('cutter_governance.run') IS NOT NULL
        AND to_regclass('cutter_governance.audit_event') IS NOT NULL AS found`,
  );
  return rows[0]?.found === true;
}

/** Settles the restored database inside the caller's open transaction. */
export async function settleRestore(tx: PoolClient, input: SettleInput): Promise<RestoreSettlement> {
  const approvals = await tx.query(
    `UPDATE cutter_governance.review_decision SET consumed_utc = now()
      WHERE consumed_utc IS NULL AND run_id IN (SELECT run_id FROM cutter_governance.execution_ledger)`,
  );
  const switchRow = await tx.query<{ enabled: boolean; run_id: string | null }>(
    'SELECT enabled, run_id FROM cutter_governance.execution_switch FOR UPDATE',
  );
  const switchWasFor = switchRow.rows.find((s) => s.enabled || s.run_id !== null);
  if (switchWasFor) {
    await tx.query(
      `UPDATE cutter_governance.execution_switch
          SET enabled = false, run_id = NULL, expires_at = NULL, changed_at = now(), changed_by = $1`,
      [ACTOR],
    );
  }
  const abandoned = await abandonRunsInFlight(tx, input);
  // A database restored on another server keeps the record of writes made there, under transaction ids this
  // server may not have reached: they would count as written after every new run's baseline (docs/proof.md).
  // They are history from before any run here: stamped 0, which every snapshot sees.
  const foreignWrites =
    input.scope === 'database' ? ((await tx.query(`UPDATE cutter_governance.corpus_write SET xact = '0' WHERE xact >= pg_current_xact_id()`)).rowCount ?? 0) : 0;
  const settlement = {
    scope: input.scope,
    runs_abandoned: abandoned,
    switch_was_for: switchWasFor ? (switchWasFor.run_id ?? '(no run)') : null,
    approvals_consumed: approvals.rowCount ?? 0,
    writes_restamped: foreignWrites,
  };
  const settledNothing = abandoned.length === 0 && !switchWasFor && settlement.approvals_consumed === 0 && foreignWrites === 0;
  if (input.scope === 'database' && settledNothing) return { ...settlement, audit_seq: null };
  const seq = await appendAudit(tx, {
    actor: ACTOR,
    kind: 'backup.restored',
    detail: { file: input.file, sha256: input.sha256, backup_run_id: input.backupRunId, tables: input.tables, ...settlement },
  });
  // The reports of the runs it abandoned follow the row that records their end: they name the chain's head, that row.
  for (const run of abandoned) await saveReport(tx, run.run_id, await buildReport(tx, run.run_id));
  return { ...settlement, audit_seq: seq };
}

interface InFlightRun {
  run_id: string;
  status: string;
  phase: string | null;
  applied_at: Date | null;
  plan_sha256: string | null;
}

/** Ends every run in flight as abandoned: status, active phase, lock, staged snapshot (the report follows the audit row). */
async function abandonRunsInFlight(tx: PoolClient, input: SettleInput): Promise<RestoreSettlement['runs_abandoned']> {
  const { rows } = await tx.query<InFlightRun>(
    `SELECT r.run_id, r.status, r.phase, l.applied_at, l.plan_sha256
       FROM cutter_governance.run r
       LEFT JOIN cutter_governance.execution_ledger l ON l.run_id = r.run_id
      WHERE r.status = ANY ($1::text[])
      ORDER BY r.created_at
        FOR UPDATE OF r`,
    [[...IN_FLIGHT_STATUSES]],
  );
  const what = input.scope === 'corpus' ? 'its corpus was restored in place' : 'the database was restored';
  for (const run of rows) {
    const where = `${run.status}${run.phase ? ` at ${run.phase}` : ''}`;
    const applied = run.applied_at
      ? `; its plan ${run.plan_sha256 ?? ''} WAS applied at ${run.applied_at.toISOString()} (execution_ledger), and the restore put the corpus ` +
        'back as the backup held it: the approvals it consumed can never apply it again, a new run and new approvals are needed'
      : '; nothing of its plan was applied';
    const message =
      `${what} from backup ${input.file} (sha256 ${input.sha256}) while this run was ${where}: ` +
      `a restored database never continues a run, so it was abandoned${applied}`;
    await tx.query(
      `UPDATE cutter_governance.run
          SET status = 'abandoned', error_code = $2, error_message = $3, finished_at = now(), updated_at = now()
        WHERE run_id = $1`,
      [run.run_id, RUN_RESTORED, message],
    );
    await tx.query(
      `UPDATE cutter_governance.run_phase
          SET state = 'skipped', finished_at = now(), error_code = $2, error = 'the run was abandoned by a restore while this phase ran'
        WHERE run_id = $1 AND state = 'active'`,
      [run.run_id, RUN_RESTORED],
    );
    await releaseCorpusLock(tx, run.run_id);
    await discardStagedSnapshot(tx, run.run_id);
  }
  return rows.map((r) => ({ run_id: r.run_id, status: r.status, phase: r.phase, applied: r.applied_at !== null }));
}
