import type { Queue } from 'bullmq';
import { appendAudit } from '../audit/append.js';
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { removeRunJobs } from '../jobs/cleanup.js';
import { jobId, phasesFor, type Phase, type RunMode } from '../jobs/catalog.js';
import { phaseResult } from '../jobs/results.js';
import type { Logger } from '../logger.js';
import { discardStagedSnapshot } from '../snapshot/stage.js';
import { releaseCorpusLock } from '../targets/lock.js';
import { buildReport } from './report.js';
import { disarmSwitchForRun } from '../execute/ledger.js';
import { failRun, saveReport } from './store.js';

/**
 * The reconciler: Postgres is the system of record, Redis only carries the
 * work. Redis without persistence loses whole flows silently on a crash
 * (FIELD-NOTES), and then Postgres says "running" for ever while no job will
 * ever move the run again, and its corpus stays locked. This compares the runs
 * Postgres has in flight with their jobs in Redis and fails closed, exactly as
 * a failed phase would, the ones whose flow is gone or whose job failed for
 * good without the run's failure being recorded.
 *
 * Assumption: one database is served under one queue prefix (the run row does
 * not record its prefix). A fleet pointed at another prefix or another Redis
 * would judge every run lost; that errs on the closed side (nothing is ever
 * applied by the reconciler), at the price of runs to enqueue again.
 */

/** A run whose flow vanished before it could finish any better than this. */
export const RUN_LOST = 'RUN_LOST';
/** The flow vanished after execute committed: the plan is in the corpus, G8 never ran. */
export const RUN_LOST_AFTER_APPLY = 'RUN_LOST_AFTER_APPLY';

/**
 * enqueueRun commits the run row before it adds the flow, so a run that has
 * not started a phase may legitimately have no jobs yet. A FlowProducer.add
 * is one MULTI; even with the client's connect retries (3, 5 s timeout) it
 * has succeeded or failed the run itself (ENQUEUE_FAILED) well inside 30 s.
 * A run that started a phase had its flow, so it gets no grace.
 */
export const DEFAULT_ENQUEUE_GRACE_MS = 30_000;
/** The fleet checks this often; two cheap queries when nothing is in flight. */
export const DEFAULT_RECONCILE_INTERVAL_MS = 5_000;
/** Bounds how long a row lock is held while Redis is asked again. */
const RECHECK_TIMEOUT_MS = 5_000;

export interface ReconcileDeps {
  pool: Pool;
  /** One Queue per phase, under the fleet's prefix: where the run's jobs must be. */
  queues: Record<Phase, Queue>;
  /** The queues' prefix, named in what the run's failure says. */
  prefix: string;
  log: Logger;
  /** Runs younger than this that never started a phase are left alone. */
  enqueueGraceMs?: number;
}

/** A run the reconciler failed because its jobs were gone. */
export interface LostRun {
  runId: string;
  code: typeof RUN_LOST | typeof RUN_LOST_AFTER_APPLY;
  /** The status and phase Postgres had for it. */
  status: string;
  phase: string | null;
  /** The phase jobs that were not in Redis in any state. */
  missing: Phase[];
  /** The phase jobs Redis holds as failed for good while Postgres still had the run in flight. */
  failed: Phase[];
  /** True when the execution ledger proves the plan was applied. */
  applied: boolean;
}

interface InFlightRun {
  run_id: string;
  mode: RunMode;
  status: string;
  phase: string | null;
  /** The state of the run's current phase row (null before any phase). */
  phase_state: string | null;
}

const RUN_COLUMNS = `r.run_id, r.mode, r.status, r.phase,
  (SELECT p.state FROM cutter_governance.run_phase p WHERE p.run_id = r.run_id AND p.phase = r.phase) AS phase_state`;

/** Runs Postgres has in flight, except those still inside the enqueue grace. */
const IN_FLIGHT = `
  SELECT ${RUN_COLUMNS} FROM cutter_governance.run r
   WHERE cutter_governance.run_in_flight(r.status)
     AND (r.started_at IS NOT NULL OR r.created_at < now() - make_interval(secs => $1::double precision / 1000))
   ORDER BY r.created_at`;

/**
 * The jobs a run still needs, in order: the one of the phase it is in (the
 * next one when that phase completed: a live run awaiting SG_1 has completed
 * cutplan and waits on the gate; before any phase, the first) and every later
 * one, which are its parents in the flow. Jobs of finished phases may be
 * cleaned up; these may not. The first is the phase the run waits on.
 */
export function neededPhases(run: { mode: RunMode; phase: string | null; phase_state: string | null }): Phase[] {
  const all = phasesFor(run.mode);
  const at = run.phase === null ? -1 : all.indexOf(run.phase as Phase);
  if (at < 0) return all;
  return all.slice(run.phase_state === 'completed' ? at + 1 : at);
}

/**
 * The needed phase jobs that are in no state at all in Redis (missing), and
 * those Redis holds as failed for good (failed: the last attempt threw, but
 * could not record the run's failure, e.g. Postgres was unreachable then; a
 * phase records it before its job fails). Either way no job will move the run
 * again. A Redis error throws: an unreachable Redis is no evidence of a lost flow.
 */
export async function strandedJobs(queues: Record<Phase, Queue>, runId: string, phases: Phase[]): Promise<{ missing: Phase[]; failed: Phase[] }> {
  const states = await Promise.all(phases.map((p) => queues[p].getJobState(jobId(runId, p))));
  return { missing: phases.filter((_, i) => states[i] === 'unknown'), failed: phases.filter((_, i) => states[i] === 'failed') };
}

/**
 * One pass: every in-flight run beyond the grace whose needed jobs are gone
 * is failed closed. Idempotent and safe with several fleets at once (the
 * decision is re-made under the run's row lock; failRun only ends a run that
 * has not ended).
 */
export async function reconcileOnce(deps: ReconcileDeps): Promise<LostRun[]> {
  const grace = deps.enqueueGraceMs ?? DEFAULT_ENQUEUE_GRACE_MS;
  const { rows } = await deps.pool.query<InFlightRun>(IN_FLIGHT, [grace]);
  const lost: LostRun[] = [];
  for (const run of rows) {
    const stranded = await strandedJobs(deps.queues, run.run_id, neededPhases(run));
    if (!stranded.missing.length && !stranded.failed.length) continue; // its jobs exist and can still run: never touched
    // One run's trouble (a lock timeout) must not keep the others from being looked at.
    const ended = await failLostRun(deps, run.run_id).catch((err: unknown) => {
      deps.log.warn({ err, run_id: run.run_id }, 'could not settle a run that looks lost; trying again on the next pass');
      return null;
    });
    if (!ended) continue;
    lost.push(ended);
    // Whatever is left of its flow waits for jobs that are gone or failed: it goes, a failed job keeping its own error.
    await removeRunJobs(deps.queues, ended.runId, ended.failed[0] === undefined ? {} : { after: ended.failed[0] }).catch((err: unknown) =>
      deps.log.warn({ err, run_id: ended.runId }, 'could not remove the jobs left of a lost run'),
    );
    deps.log.error(
      { run_id: ended.runId, code: ended.code, status: ended.status, phase: ended.phase, missing_jobs: ended.missing, failed_jobs: ended.failed, applied: ended.applied },
      ended.applied
        ? 'run lost after its plan was applied: no job in Redis will move it again, verification never ran; failed closed'
        : 'run lost: no job in Redis will move it again; failed closed, nothing applied',
    );
  }
  return lost;
}

/**
 * Re-decides under locks and fails the run: null when it turned out not to
 * be lost (execute holds it, it ended, or its jobs are there after all).
 */
async function failLostRun(deps: ReconcileDeps, runId: string): Promise<LostRun | null> {
  return withTransaction(deps.pool, async (tx) => {
    await tx.query(`SET LOCAL lock_timeout = '2s'`);
    // Execute holds this lock for its whole transaction. Taking it (without
    // waiting) means no apply is in flight, and none can start until this
    // commits, when execute will find the run ended (RUN_NOT_RUNNING) and the
    // kill switch off: the ledger read below is the final word.
    const lock = await tx.query<{ got: boolean }>(
      `SELECT pg_try_advisory_xact_lock(hashtext('cutter.execute'), hashtext($1)) AS got`,
      [runId],
    );
    if (!lock.rows[0]?.got) return null; // an execute is running: its worker is alive, look again next pass
    const current = await tx.query<InFlightRun>(
      `SELECT ${RUN_COLUMNS} FROM cutter_governance.run r
        WHERE r.run_id = $1 AND cutter_governance.run_in_flight(r.status) FOR UPDATE OF r`,
      [runId],
    );
    const run = current.rows[0];
    if (!run) return null;
    // The re-check: what was missing a moment ago must still be missing now.
    const needed = neededPhases(run);
    const { missing, failed } = await withTimeout(strandedJobs(deps.queues, runId, needed), RECHECK_TIMEOUT_MS);
    if (!missing.length && !failed.length) return null;
    const gone = [
      missing.length ? `the run's jobs are gone from Redis (no ${missing.join(', ')} job under prefix ${deps.prefix}: Redis lost them, e.g. restarted without persistence)` : '',
      failed.length ? `its ${failed.join(', ')} job failed for good in the queue while Postgres still had the run ${run.status} (its last attempt could not record the failure, e.g. Postgres was unreachable then)` : '',
    ].filter(Boolean).join('; and ');
    const ledger = await tx.query<{ plan_sha256: string; unit_count: number; applied_at: Date }>(
      'SELECT plan_sha256, unit_count, applied_at FROM cutter_governance.execution_ledger WHERE run_id = $1',
      [runId],
    );
    const applied = ledger.rows[0];
    let code: LostRun['code'];
    if (applied) {
      // The ledger row commits with the change, so the plan WAS applied, once
      // and whole. The run is failed, not succeeded: succeeded means a G8
      // verdict of PASS and nobody verified. The failure is named in verify,
      // the phase that is missing; execute's row is closed as what it was.
      code = RUN_LOST_AFTER_APPLY;
      await closeCommittedExecute(tx, runId, applied);
      await failRun(tx, {
        runId,
        phase: 'verify',
        code,
        message:
          `${gone} after execute committed: the plan ${applied.plan_sha256} WAS applied (${applied.unit_count} units, ` +
          `execution_ledger at ${applied.applied_at.toISOString()}); verification (G8) never ran, so the corpus is cut as planned ` +
          'but unverified: check it before relying on it',
      });
    } else {
      code = RUN_LOST;
      await failRun(tx, {
        runId,
        phase: needed[0] ?? 'verify',
        code,
        message: `${gone}; failed closed: nothing was applied (no execution_ledger row); enqueue the run again`,
      });
    }
    // Everything a failed phase gives back, in the same transaction as the verdict.
    await releaseCorpusLock(tx, runId);
    await discardStagedSnapshot(tx, runId);
    await disarmSwitchForRun(tx, runId, 'reconciler:run-lost');
    await appendAudit(tx, { actor: 'reconciler', kind: 'run.lost', runId, detail: { code, status: run.status, phase: run.phase, missing_jobs: missing, failed_jobs: failed, applied: Boolean(applied) } });
    // Last: the report names the audit chain's head, the row just appended.
    await saveReport(tx, runId, await buildReport(tx, runId));
    return { runId, code, status: run.status, phase: run.phase, missing, failed, applied: Boolean(applied) };
  });
}

/** Execute committed but its job never completed: its phase row records the result, from the ledger. */
async function closeCommittedExecute(tx: PoolClient, runId: string, ledger: { plan_sha256: string; unit_count: number; applied_at: Date }): Promise<void> {
  const result = phaseResult('execute', {
    mode: 'live',
    applied: true,
    plan_sha256: ledger.plan_sha256,
    unit_count: ledger.unit_count,
    recorded_by: 'reconciler, from execution_ledger',
  });
  await tx.query(
    `UPDATE cutter_governance.run_phase SET state = 'completed', finished_at = $2, summary = $3::jsonb
      WHERE run_id = $1 AND phase = 'execute' AND state = 'active'`,
    [runId, ledger.applied_at, JSON.stringify(result)],
  );
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`RECONCILE_REDIS_TIMEOUT: Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface Reconciler {
  /** Stops the loop and waits for a pass in progress. */
  stop: () => Promise<void>;
  /** One pass now. */
  reconcileOnce: () => Promise<LostRun[]>;
}

/**
 * Runs a pass at once and then every intervalMs (after the previous pass
 * ended, so passes never overlap). A failed pass (Redis or Postgres away) is
 * logged and tried again; it never judges a run.
 */
export function startReconciler(deps: ReconcileDeps, intervalMs = DEFAULT_RECONCILE_INTERVAL_MS): Reconciler {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = reconcileOnce(deps)
      .catch((err: unknown) => deps.log.warn({ err }, 'reconcile pass failed; trying again on the next tick'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, 0);
  return {
    reconcileOnce: () => reconcileOnce(deps),
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
