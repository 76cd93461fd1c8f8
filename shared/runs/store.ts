import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from '../db/pool.js';
import type { Phase, RunMode } from '../jobs/catalog.js';

/** The run statuses of DESIGN §4. */
export type RunStatus = 'queued' | 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'expired';

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
  snapshot_path: string | null;
  snapshot_sha256: string | null;
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
  summary: Record<string, unknown>;
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
  snapshotPath: string;
  snapshotSha256: string;
  idempotencyKey: string | null;
  approvalWindowS: number;
}

/** Inserts the run row (status queued). */
export async function insertRun(db: Db, run: NewRun): Promise<void> {
  await db.query(
    `INSERT INTO cutter_governance.run
       (run_id, target, corpus, mode, operator, snapshot_path, snapshot_sha256, idempotency_key, approval_window_s)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      run.runId,
      run.target,
      run.corpus,
      run.mode,
      run.operator,
      run.snapshotPath,
      run.snapshotSha256,
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
  /** False: the run had already ended (a late redelivery); nothing was changed. */
  started: boolean;
  /** approval-gate only: cutter_governance.gate_reads of the claimed run (read after its lock); null otherwise. */
  gateReads: unknown;
  /** peekGate only: the database's clock at the read, the phase's start if the gate opens on it. */
  readAt?: Date;
}

/**
 * What a phase's job finds when it starts: the run as it is, and whether the
 * phase began (the run is in flight: it is now running, in this phase, and
 * the phase row is active, on a retry with one more attempt). A run that has
 * ended is returned unchanged with started false; an unknown run is null.
 * One statement, so one round trip and one commit: the run row's lock (which
 * the approval store also takes) orders it against a concurrent approval.
 *
 * Its commit does not wait for the WAL flush (synchronous_commit off for this
 * one transaction: 0.4 ms instead of 3-4 ms here). Nothing outside the
 * database acts on a claim alone, and the WAL is flushed in order, so the
 * phase's next synchronous commit makes the claim durable with it; only a
 * database crash before that loses the claim, and then nothing the phase did
 * in Postgres survives either: the redelivered job simply claims again.
 * Other sessions see the claim as soon as it commits, flushed or not.
 */
export async function claimPhase(db: Db, runId: string, phase: Phase): Promise<ClaimedPhase | null> {
  // The approval gate's reads ride in its claim, after the lock (migration 015); other phases read nothing more.
  const gateReads = phase === 'approval-gate' ? 'cutter_governance.gate_reads(c.run_id)' : 'NULL::jsonb';
  const { rows } = await db.query<RunRow & { started: boolean; gate_reads: unknown }>(
    `WITH async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),
     claimed AS (
       UPDATE cutter_governance.run
          SET status = 'running', phase = $2, started_at = coalesce(started_at, now()), updated_at = now()
        WHERE run_id = $1 AND status IN ('queued', 'running', 'awaiting_approval') AND EXISTS (SELECT 1 FROM async)
       RETURNING *
     ), phase_row AS (
       INSERT INTO cutter_governance.run_phase (run_id, phase, state)
       SELECT run_id, $2, 'active' FROM claimed
       ON CONFLICT (run_id, phase) DO UPDATE
         SET state = 'active', attempts = run_phase.attempts + 1, started_at = now(), finished_at = NULL,
             error = NULL, error_code = NULL
     )
     SELECT c.*, true AS started, ${gateReads} AS gate_reads FROM claimed c
     UNION ALL
     SELECT r.*, false, NULL::jsonb FROM cutter_governance.run r WHERE r.run_id = $1 AND NOT EXISTS (SELECT 1 FROM claimed)`,
    [runId, phase],
  );
  const row = rows[0];
  if (!row) return null;
  const { started, gate_reads, ...run } = row;
  return { run, started, gateReads: gate_reads };
}

/**
 * The approval gate's first read: the run and, while it is in flight, the
 * reads of cutter_governance.gate_reads, without claiming anything (no lock,
 * no write). When these approvals open the gate, its one commit
 * (cutter_governance.open_gate, migration 016) is the claim as well; any
 * other decision is taken after claimPhase. started: the run is in flight;
 * readAt: the database's clock at the read, the phase's start if it opens.
 */
export async function peekGate(db: Db, runId: string): Promise<ClaimedPhase | null> {
  const { rows } = await db.query<RunRow & { started: boolean; gate_reads: unknown; read_at: Date }>(
    `SELECT r.*, s.started, CASE WHEN s.started THEN cutter_governance.gate_reads(r.run_id) END AS gate_reads, clock_timestamp() AS read_at
       FROM cutter_governance.run r, LATERAL (SELECT r.status IN ('queued', 'running', 'awaiting_approval') AS started) s
      WHERE r.run_id = $1`,
    [runId],
  );
  const row = rows[0];
  if (!row) return null;
  const { started, gate_reads, read_at, ...run } = row;
  return { run, started, gateReads: gate_reads, readAt: read_at };
}

/** A phase finished; its small summary is kept for the status view and the report. */
export async function completePhase(db: Db, runId: string, phase: Phase, summary: Record<string, unknown>): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.run_phase SET state = 'completed', finished_at = now(), summary = $3::jsonb
      WHERE run_id = $1 AND phase = $2`,
    [runId, phase, JSON.stringify(summary)],
  );
}

/** Records a phase's progress (bytes, records) while it runs. */
export async function phaseProgress(db: Db, runId: string, phase: Phase, progress: Record<string, unknown>): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.run_phase SET summary = summary || $3::jsonb WHERE run_id = $1 AND phase = $2 AND state = 'active'`,
    [runId, phase, JSON.stringify(progress)],
  );
}

/** Sets the run's status (only while it has not ended). */
export async function setRunStatus(db: Db, runId: string, status: RunStatus): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.run SET status = $2, updated_at = now()
      WHERE run_id = $1 AND status IN ('queued', 'running', 'awaiting_approval')`,
    [runId, status],
  );
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
  await db.query(
    `INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at, error_code, error)
     VALUES ($1, $2, 'failed', now(), $3, $4)
     ON CONFLICT (run_id, phase) DO UPDATE SET state = 'failed', finished_at = now(), error_code = $3, error = $4`,
    [args.runId, args.phase, args.code, args.message],
  );
  const result = await db.query(
    `UPDATE cutter_governance.run
        SET status = $5, failed_phase = $2, error_code = $3, error_message = $4, verdict = 'FAIL',
            phase = $2, finished_at = now(), updated_at = now()
      WHERE run_id = $1 AND status IN ('queued', 'running', 'awaiting_approval')`,
    [args.runId, args.phase, args.code, args.message, args.status ?? 'failed'],
  );
  return Boolean(result.rowCount);
}

/** Ends the run with its verdict (only while it has not ended: a run the reconciler failed stays failed). */
export async function finishRun(db: Db, args: { runId: string; verdict: 'PASS' | 'FAIL' }): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.run
        SET status = CASE WHEN $2 = 'PASS' THEN 'succeeded' ELSE 'failed' END,
            failed_phase = CASE WHEN $2 = 'PASS' THEN NULL ELSE 'verify' END,
            error_code = CASE WHEN $2 = 'PASS' THEN NULL ELSE 'VERIFY_FAILED' END,
            verdict = $2, finished_at = now(), updated_at = now()
      WHERE run_id = $1 AND status IN ('queued', 'running', 'awaiting_approval')`,
    [args.runId, args.verdict],
  );
}

/** Stores the report of a run (also of a failed one). */
export async function saveReport(db: Db, runId: string, report: string): Promise<void> {
  await db.query('UPDATE cutter_governance.run SET report = $2, updated_at = now() WHERE run_id = $1', [runId, report]);
}

/** Stores the G0 baseline taken by precheck. */
export async function saveBaseline(db: Db, runId: string, baseline: unknown): Promise<void> {
  await db.query('UPDATE cutter_governance.run SET baseline = $2::jsonb, updated_at = now() WHERE run_id = $1', [
    runId,
    JSON.stringify(baseline),
  ]);
}
