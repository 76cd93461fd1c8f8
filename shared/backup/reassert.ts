import type pg from 'pg';
import { appendAudit } from '../audit/append.js';
import { HOLD } from '../db/restore-hold.js';
import type { PoolClient } from '../db/pool.js';
import type { RunMode } from '../jobs/catalog.js';
import { neededPhases } from '../runs/reconcile.js';
import { buildReport } from '../runs/report.js';
import { IN_FLIGHT_STATUSES } from '../runs/status.js';
import { failRun, saveReport } from '../runs/store.js';
import { discardStagedSnapshot } from '../snapshot/stage.js';
import { releaseCorpusLock } from '../targets/lock.js';
import { dropHold } from './hold.js';

/**
 * What a restore re-asserts once pg_restore has committed, in one
 * transaction as the restoring (super)user. A restored database is never a
 * live continuation of anything: the backup of a live run is taken after its
 * gate consumed the approvals and its EXEC grant turned the kill switch on,
 * so restored as it is, that run would be running at backup, armed, with no
 * ledger row, ready to apply its plan a second time.
 *
 * Always (any restore that brought back governance tables):
 * - every run in flight ends `failed` with RUN_RESTORED, its corpus lock
 *   released and its report saying why;
 * - the kill switch is off;
 * - no approval of a run whose plan was applied stays unconsumed.
 * After an in-place restore (a hold was taken, hold.ts), first:
 * - the ledger rows the backup lacks are put back (migration 020);
 * - the audit rows after the backup's last one are put back exactly as they
 *   were (same seq, time and hashes), when the restored chain is the start
 *   of the held one; otherwise they stay in the hold, which is kept, and the
 *   restore fails loudly after committing the rest;
 * and the hold is dropped in the same commit. Every restore that changes
 * anything here audits it in one `backup.restored` row, through the normal
 * chained path.
 */

export const RUN_RESTORED = 'RUN_RESTORED';
const ACTOR = 'cutter:backup-restore';
/** The chain's append lock (shared/db/functions/audit_chain_row.sql). */
const AUDIT_LOCK = `SELECT pg_advisory_xact_lock(hashtext('cutter_governance.audit_event')::bigint)`;

export interface ReassertInput {
  file: string;
  sha256: string;
  /** A hold exists (an in-place restore): the ledger and chain come back from it. */
  held: boolean;
  /** The hold was left by an earlier restore that did not finish, and this one finished it. */
  resumedHold: boolean;
  /** Numbered migrations the backup predated, applied before the re-assert. */
  migrationsApplied: string[];
}

export interface ReassertSummary {
  /** Whether anything was written (a restore into a new database with nothing in flight writes nothing). */
  changed: boolean;
  in_place: boolean;
  resumed_hold: boolean;
  runs_ended: { run_id: string; status: string; phase: string | null; applied: boolean }[];
  /** The run the kill switch was on (or left set) for, before it went off. */
  switch_was_for: string | null;
  approvals_consumed: number;
  ledger_rows_reinserted: string[];
  audit: { restored_last_seq: number; reappended: number; held_rows: number | null; diverged_at: number | null };
  migrations_applied: string[];
}

/** True when the database holds cutter's governance schema (a plain database restored has nothing to settle). */
async function hasRunTable(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(
    `SELECT to_regclass('cutter_governance.run') IS NOT NULL AND to_regclass('cutter_governance.execution_switch') IS NOT NULL AS found`,
  );
  return rows[0]?.found === true;
}

/** Runs the re-assert in one transaction on `client`; null when the database holds no governance schema. */
export async function reassertAfterRestore(client: pg.ClientBase, input: ReassertInput): Promise<ReassertSummary | null> {
  if (!(await hasRunTable(client))) return null;
  await client.query('BEGIN');
  try {
    // The run store's helpers take a pool client; they only query, which any client does.
    const summary = await reassert(client as PoolClient, input);
    if (summary.changed) await client.query('COMMIT');
    else await client.query('ROLLBACK');
    return summary;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function reassert(tx: PoolClient, input: ReassertInput): Promise<ReassertSummary> {
  // No audit row can be appended by anyone else meanwhile: the rows put back take the seqs after the restored end.
  await tx.query(AUDIT_LOCK);
  const audit = input.held ? await reappendAudit(tx) : { restored_last_seq: await lastSeq(tx), reappended: 0, held_rows: null, diverged_at: null };
  const ledger = input.held
    ? await tx.query<{ run_id: string }>(
        `INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count, applied_at)
         SELECT run_id, plan_sha256, unit_count, applied_at FROM ${HOLD}.execution_ledger
         ON CONFLICT (run_id) DO NOTHING RETURNING run_id`,
      )
    : { rows: [] };
  // An approval of an applied plan must never open anything again.
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
  const runsEnded = await endRunsInFlight(tx, input);

  const summary: ReassertSummary = {
    changed: false,
    in_place: input.held,
    resumed_hold: input.resumedHold,
    runs_ended: runsEnded,
    switch_was_for: switchWasFor ? (switchWasFor.run_id ?? '(no run)') : null,
    approvals_consumed: approvals.rowCount ?? 0,
    ledger_rows_reinserted: ledger.rows.map((r) => r.run_id),
    audit,
    migrations_applied: input.migrationsApplied,
  };
  summary.changed =
    input.held || runsEnded.length > 0 || switchWasFor !== undefined || summary.approvals_consumed > 0 || ledger.rows.length > 0;
  if (!summary.changed) return summary;
  const { changed: _changed, ...detail } = summary;
  await appendAudit(tx, { actor: ACTOR, kind: 'backup.restored', detail: { file: input.file, sha256: input.sha256, ...detail } });
  // The reports of the runs it ended follow the row that records their end: they name the chain's head, that row.
  for (const run of runsEnded) await saveReport(tx, run.run_id, await buildReport(tx, run.run_id));
  // A chain that did not match keeps its hold: the rows it has are nowhere else.
  if (input.held && audit.diverged_at === null) await dropHold(tx);
  return summary;
}

async function lastSeq(tx: PoolClient): Promise<number> {
  const { rows } = await tx.query<{ last: number | null }>('SELECT max(seq) AS last FROM cutter_governance.audit_event');
  return Number(rows[0]?.last ?? 0);
}

/**
 * Puts back the held rows after the restored chain's end, exactly as they
 * were, once every row both chains have is the same row. The chain trigger
 * would give them new times and hashes; a superuser's inserts under
 * session_replication_role = replica skip triggers, and only for these rows.
 */
async function reappendAudit(tx: PoolClient): Promise<ReassertSummary['audit']> {
  const restoredLast = await lastSeq(tx);
  const held = await tx.query<{ n: number; last: number | null }>(`SELECT count(*)::int AS n, max(seq) AS last FROM ${HOLD}.audit_event`);
  const heldRows = held.rows[0]?.n ?? 0;
  const common = Math.min(restoredLast, Number(held.rows[0]?.last ?? 0));
  const diverged = await tx.query<{ seq: number }>(
    `SELECT s.seq FROM generate_series(1, $1::bigint) AS s (seq)
       LEFT JOIN cutter_governance.audit_event r ON r.seq = s.seq
       LEFT JOIN ${HOLD}.audit_event h ON h.seq = s.seq
      WHERE r.hash IS NULL OR h.hash IS NULL OR r.hash <> h.hash
      ORDER BY s.seq LIMIT 1`,
    [common],
  );
  const divergedAt = diverged.rows[0]?.seq ?? null;
  if (divergedAt !== null) return { restored_last_seq: restoredLast, reappended: 0, held_rows: heldRows, diverged_at: Number(divergedAt) };
  await tx.query('SET LOCAL session_replication_role = replica');
  const back = await tx.query(
    `INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash)
     SELECT seq, at, actor, kind, run_id, detail, prev_hash, hash FROM ${HOLD}.audit_event WHERE seq > $1 ORDER BY seq`,
    [restoredLast],
  );
  await tx.query('SET LOCAL session_replication_role = origin');
  return { restored_last_seq: restoredLast, reappended: back.rowCount ?? 0, held_rows: heldRows, diverged_at: null };
}

interface InFlightRun {
  run_id: string;
  mode: RunMode;
  status: string;
  phase: string | null;
  phase_state: string | null;
  applied_at: Date | null;
  plan_sha256: string | null;
}

/** Ends every run in flight as a failed phase would: status, lock, staged snapshot (the report follows the audit row). */
async function endRunsInFlight(tx: PoolClient, input: ReassertInput): Promise<ReassertSummary['runs_ended']> {
  const { rows } = await tx.query<InFlightRun>(
    `SELECT r.run_id, r.mode, r.status, r.phase,
            (SELECT p.state FROM cutter_governance.run_phase p WHERE p.run_id = r.run_id AND p.phase = r.phase) AS phase_state,
            l.applied_at, l.plan_sha256
       FROM cutter_governance.run r
       LEFT JOIN cutter_governance.execution_ledger l ON l.run_id = r.run_id
      WHERE r.status = ANY ($1::text[])
      ORDER BY r.created_at
        FOR UPDATE OF r`,
    [[...IN_FLIGHT_STATUSES]],
  );
  for (const run of rows) {
    const where = `${run.status}${run.phase ? ` at ${run.phase}` : ''}`;
    const applied = run.applied_at
      ? `; its plan ${run.plan_sha256 ?? ''} WAS applied at ${run.applied_at.toISOString()} (execution_ledger), and the restore put the corpus ` +
        'back as the backup held it: the approvals it consumed can never apply it again, a new run and new approvals are needed'
      : '; nothing of its plan was applied';
    await failRun(tx, {
      runId: run.run_id,
      phase: neededPhases(run)[0] ?? 'verify',
      code: RUN_RESTORED,
      message:
        `the database was restored from backup ${input.file} (sha256 ${input.sha256}) while this run was ${where}: ` +
        `a restored database never continues a run, so it was ended closed${applied}`,
    });
    await releaseCorpusLock(tx, run.run_id);
    await discardStagedSnapshot(tx, run.run_id);
  }
  return rows.map((r) => ({ run_id: r.run_id, status: r.status, phase: r.phase, applied: r.applied_at !== null }));
}
