import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from '../db/pool.js';
import { phasesFor, type Phase, type RunMode } from '../jobs/catalog.js';
import { baseline as baselineSchema, phaseResult, type Baseline, type PhaseProgress, type PhaseResult } from '../jobs/results.js';
import type { RunStatus } from './status.js';

export interface RunRow {
  run_id: string;
  target: string;
  corpus: string;
  mode: RunMode;
  status: RunStatus;
  phase: string | null;
  failed_phase: string | null;
  error_code: string | null;
  error_message: string | null;
  operator: string;
  /** The database login that inserted the row (trigger run_enqueued_by), whatever the client sent. */
  enqueued_by: string;
  snapshot_path: string | null;
  snapshot_sha256: string | null;
  /** The run this one reverts (its input is computed from that run's plan, not read from a snapshot); null for a run of a snapshot. */
  revert_of: string | null;
  /** A revert that leaves out units changed since the run it reverts (--skip-drifted). */
  revert_skip_drifted: boolean;
  idempotency_key: string | null;
  approval_window_s: number;
  created_at: Date;
  started_at: Date | null;
  updated_at: Date;
  finished_at: Date | null;
  baseline: unknown;
  verdict: 'PASS' | 'FAIL' | null;
  report: string | null;
}

export interface PhaseRow {
  phase: string;
  state: 'active' | 'completed' | 'failed' | 'skipped';
  attempts: number;
  started_at: Date;
  finished_at: Date | null;
  /** While active: its progress; once completed: its result (read it with completedResult). */
  summary: unknown;
  error_code: string | null;
  error: string | null;
}

type Db = Pool | PoolClient;

/** run-20261124-021500-ab12cd: sortable by time, unique by its random tail. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface NewRun {
  runId: string;
  target: string;
  corpus: string;
  mode: RunMode;
  operator: string;
  /** A run of a snapshot: its file, and the sha256 it had when enqueued (null for a revert). */
  snapshotPath: string | null;
  snapshotSha256: string | null;
  /** A revert: the run whose applied plan it inverts, and whether units changed since are left out. */
  revert?: { of: string; skipDrifted: boolean };
  idempotencyKey: string | null;
  approvalWindowS: number;
}

/** Inserts the run row (status queued). */
export async function insertRun(db: Db, run: NewRun): Promise<void> {
  await db.query(
    `INSERT INTO cutter_governance.run
       (run_id, target, corpus, mode, operator, snapshot_path, snapshot_sha256, revert_of, revert_skip_drifted, idempotency_key, approval_window_s)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      run.runId,
      run.target,
      run.corpus,
      run.mode,
      run.operator,
      run.snapshotPath,
      run.snapshotSha256,
      run.revert?.of ?? null,
      run.revert?.skipDrifted ?? false,
      run.idempotencyKey,
      run.approvalWindowS,
    ],
  );
}

/** The run, or null when no such run exists. */
export async function getRun(db: Db, runId: string): Promise<RunRow | null> {
  const result = await db.query<RunRow>('SELECT * FROM cutter_governance.run WHERE run_id = $1', [runId]);
  return result.rows[0] ?? null;
}

/** The run created with this idempotency key, if any. */
export async function getRunByIdempotencyKey(db: Db, key: string): Promise<RunRow | null> {
  const result = await db.query<RunRow>('SELECT * FROM cutter_governance.run WHERE idempotency_key = $1', [key]);
  return result.rows[0] ?? null;
}

/** Every phase row of a run, in start order. */
export async function getPhases(db: Db, runId: string): Promise<PhaseRow[]> {
  const result = await db.query<PhaseRow>(
    `SELECT phase, state, attempts, started_at, finished_at, summary, error_code, error
       FROM cutter_governance.run_phase WHERE run_id = $1 ORDER BY started_at, phase`,
    [runId],
  );
  return result.rows;
}

/** A phase's claim: see claimPhase. */
export interface ClaimedPhase {
  run: RunRow;
  /** False: the run had already ended (a late redelivery), or the phase is out of its run's order; nothing was changed. */
  started: boolean;
  /** Not started although the run is in flight: the phase's turn has not come, or a later phase has begun. */
  outOfOrder: boolean;
  /** What the phase's claimReads function returned (read after the run's lock); null without one. */
  reads: unknown;
}

/** A read a phase takes in its claim: a cutter_governance function of the run id (shared/db/functions/). */
export type ClaimReads = `cutter_governance.${string}`;
const CLAIM_READS = /^cutter_governance\.[a-z_]+$/;

/**
 * What a phase's job finds when it starts: the run as it is, and whether the
 * phase began (the run is in flight: it is now running, in this phase, and
 * the phase row is active, on a retry with one more attempt). A run that has
 * ended is returned unchanged with started false; an unknown run is null.
 * One statement, so one round trip and one commit: the run row's lock (which
 * the approval store also takes) orders it against a concurrent approval.
 *
 * A phase starts only in its run's order (jobs can be added, swapped or
 * promoted by anyone with Redis write access): the phase before it in the
 * run's mode completed, and no later phase has begun. A phase's job becomes
 * runnable only once the job before it completed, which is after that
 * phase's completion committed, so the claim's snapshot sees it.
 *
 * reads: a function of the run id whose answer rides in the same statement,
 * called on the claimed row, so it runs after the row lock: a VOLATILE
 * PL/pgSQL function takes a snapshot of its own when it runs, and so sees
 * everything committed by whoever held the lock before (a plain sub-select
 * would use the statement's snapshot, taken before the wait).
 *
 * Its commit does not wait for the WAL flush (synchronous_commit off for this
 * one transaction). Nothing outside the database acts on a claim alone, and
 * the WAL is flushed in order, so the phase's next synchronous commit makes
 * the claim durable with it; only a database crash before that loses the
 * claim, and then nothing the phase did in Postgres survives either: the
 * redelivered job simply claims again.
 */
export async function claimPhase(db: Db, runId: string, phase: Phase, reads?: ClaimReads): Promise<ClaimedPhase | null> {
  if (reads !== undefined && !CLAIM_READS.test(reads)) throw new Error(`claim reads ${reads} is not a cutter_governance function`);
  const { rows } = await db.query<RunRow & { started: boolean; out_of_order: boolean; claim_reads: unknown }>(
    `WITH async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),
     claimed AS (
       UPDATE cutter_governance.run
          SET status = 'running', phase = $2, started_at = coalesce(started_at, now()), updated_at = now()
        WHERE run_id = $1 AND cutter_governance.run_in_flight(status) AND EXISTS (SELECT 1 FROM async)
          AND EXISTS (
            SELECT 1 FROM (SELECT CASE mode WHEN 'live' THEN $3::text[] ELSE $4::text[] END AS phases) o,
                          LATERAL (SELECT array_position(o.phases, $2) AS pos) p
             WHERE p.pos IS NOT NULL
               AND (p.pos = 1 OR EXISTS (SELECT 1 FROM cutter_governance.run_phase f
                                          WHERE f.run_id = $1 AND f.phase = o.phases[p.pos - 1] AND f.state = 'completed'))
               AND NOT EXISTS (SELECT 1 FROM cutter_governance.run_phase f
                                WHERE f.run_id = $1 AND f.phase = ANY (o.phases[p.pos + 1:])))
       RETURNING *
     ), phase_row AS (
       INSERT INTO cutter_governance.run_phase (run_id, phase, state)
       SELECT run_id, $2, 'active' FROM claimed
       ON CONFLICT (run_id, phase) DO UPDATE
         SET state = 'active', attempts = run_phase.attempts + 1, started_at = now(), finished_at = NULL,
             summary = '{}'::jsonb, error = NULL, error_code = NULL
     )
     SELECT c.*, true AS started, false AS out_of_order, ${reads === undefined ? 'NULL::jsonb' : `${reads}(c.run_id)`} AS claim_reads FROM claimed c
     UNION ALL
     SELECT r.*, false, cutter_governance.run_in_flight(r.status), NULL::jsonb
       FROM cutter_governance.run r WHERE r.run_id = $1 AND NOT EXISTS (SELECT 1 FROM claimed)`,
    [runId, phase, phasesFor('live'), phasesFor('dry')],
  );
  const row = rows[0];
  if (!row) return null;
  const { started, out_of_order, claim_reads, ...run } = row;
  return { run, started, outOfOrder: out_of_order, reads: claim_reads };
}

/**
 * Takes the run's row lock inside tx: the order every writer of a run's rows
 * keeps (run, then its phase rows). Returns the run's status as of the lock
 * (null: no such run).
 */
export async function lockRun(tx: PoolClient, runId: string): Promise<RunStatus | null> {
  const { rows } = await tx.query<{ status: RunStatus }>('SELECT status FROM cutter_governance.run WHERE run_id = $1 FOR UPDATE', [runId]);
  return rows[0]?.status ?? null;
}

/** A phase finished: its result, written through the phase's schema, is kept for later phases, the view and the report. */
export async function completePhase<P extends Phase>(db: Db, runId: string, phase: P, result: PhaseResult<P>): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.run_phase SET state = 'completed', finished_at = now(), summary = $3::jsonb
      WHERE run_id = $1 AND phase = $2`,
    [runId, phase, JSON.stringify(phaseResult(phase, result))],
  );
}

/** The result of a phase that completed, parsed through its schema; null when it has not completed. */
export function completedResult<P extends Phase>(phases: readonly PhaseRow[], phase: P): PhaseResult<P> | null {
  const row = phases.find((p) => p.phase === phase && p.state === 'completed');
  return row ? phaseResult(phase, row.summary) : null;
}

/** Records a phase's progress (bytes, records) while it runs. */
export async function phaseProgress(db: Db, runId: string, phase: Phase, progress: PhaseProgress): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.run_phase SET summary = summary || $3::jsonb WHERE run_id = $1 AND phase = $2 AND state = 'active'`,
    [runId, phase, JSON.stringify(progress)],
  );
}

/** Sets the run's status (only while it has not ended); true when it changed. */
export async function setRunStatus(db: Db, runId: string, status: RunStatus): Promise<boolean> {
  const result = await db.query(
    `UPDATE cutter_governance.run SET status = $2, updated_at = now()
      WHERE run_id = $1 AND cutter_governance.run_in_flight(status) AND status <> $2`,
    [runId, status],
  );
  return Boolean(result.rowCount);
}

/**
 * Fails the run closed: status, the phase that failed and why. Only the first
 * failure is recorded (later phases fail by cascade and must not overwrite it).
 * Returns false when the run had already ended.
 */
export async function failRun(
  db: Db,
  args: { runId: string; phase: Phase; code: string; message: string; status?: 'failed' | 'expired' },
): Promise<boolean> {
  // The run row first, then its phase row: the order the claim takes them in.
  const result = await db.query(
    `UPDATE cutter_governance.run
        SET status = $5, failed_phase = $2, error_code = $3, error_message = $4, verdict = 'FAIL',
            phase = $2, finished_at = now(), updated_at = now()
      WHERE run_id = $1 AND cutter_governance.run_in_flight(status)`,
    [args.runId, args.phase, args.code, args.message, args.status ?? 'failed'],
  );
  await db.query(
    `INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at, error_code, error)
     VALUES ($1, $2, 'failed', now(), $3, $4)
     ON CONFLICT (run_id, phase) DO UPDATE SET state = 'failed', finished_at = now(), error_code = $3, error = $4`,
    [args.runId, args.phase, args.code, args.message],
  );
  return Boolean(result.rowCount);
}

/** Ends the run with its verdict (only while it has not ended: a run the reconciler failed stays failed); true when it did. */
export async function finishRun(db: Db, args: { runId: string; verdict: 'PASS' | 'FAIL' }): Promise<boolean> {
  const result = await db.query(
    `UPDATE cutter_governance.run
        SET status = CASE WHEN $2 = 'PASS' THEN 'succeeded' ELSE 'failed' END,
            failed_phase = CASE WHEN $2 = 'PASS' THEN NULL ELSE 'verify' END,
            error_code = CASE WHEN $2 = 'PASS' THEN NULL ELSE 'VERIFY_FAILED' END,
            verdict = $2, finished_at = now(), updated_at = now()
      WHERE run_id = $1 AND cutter_governance.run_in_flight(status)`,
    [args.runId, args.verdict],
  );
  return Boolean(result.rowCount);
}

/** Stores the report of a run (also of a failed one). */
export async function saveReport(db: Db, runId: string, report: string): Promise<void> {
  await db.query('UPDATE cutter_governance.run SET report = $2, updated_at = now() WHERE run_id = $1', [runId, report]);
}

/** Stores the G0 baseline taken by precheck, through its schema. */
export async function saveBaseline(db: Db, runId: string, baseline: Baseline): Promise<void> {
  await db.query('UPDATE cutter_governance.run SET baseline = $2::jsonb, updated_at = now() WHERE run_id = $1', [
    runId,
    JSON.stringify(baselineSchema.parse(baseline)),
  ]);
}

/** The run's G0 baseline, parsed; null before precheck recorded it. */
export function runBaseline(run: RunRow): Baseline | null {
  return run.baseline === null ? null : baselineSchema.parse(run.baseline);
}
