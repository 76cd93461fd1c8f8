import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { appendAudit } from '../shared/audit/append.js';
import { isPostgresUnavailable, waitForPostgres, withTransaction } from '../shared/db/pool.js';
import { CutterError, coerceError, errorCode } from '../shared/errors.js';
import { disarmSwitchForRun } from '../shared/execute/ledger.js';
import { jobId, PHASE_POLICY, phaseJobData, type Phase } from '../shared/jobs/catalog.js';
import { removeRunJobs } from '../shared/jobs/cleanup.js';
import { reachMoment } from '../shared/jobs/moments.js';
import type { Logger } from '../shared/logger.js';
import { buildReport } from '../shared/runs/report.js';
import { inFlight, isStopped, type StoppedStatus } from '../shared/runs/status.js';
import { claimPhase, completePhase, failRun, getRun, lockRun, phaseProgress, saveReport } from '../shared/runs/store.js';
import { discardStagedSnapshot } from '../shared/snapshot/stage.js';
import { releaseCorpusLock } from '../shared/targets/lock.js';
import type { PhaseDeps, PhaseWorker } from './context.js';

/**
 * How long a failed attempt waits for an unreachable Postgres before it gives
 * the attempt up. Bounded so a worker's shutdown (which waits for its active
 * jobs) is never held for ever by a server that does not come back.
 */
export const POSTGRES_OUTAGE_WAIT_MS = 60_000;

/**
 * Wraps a phase with what every phase needs: parse the job, claim the phase
 * for the run in Postgres (never trust the job), run the processor, record
 * its result (with whatever the phase declares must commit with it), and on
 * the last failed attempt fail the run closed and release its corpus lock.
 */
export function phaseRunner<P extends Phase>(phase: P, worker: PhaseWorker<P>, deps: PhaseDeps) {
  return async (job: Job): Promise<unknown> => {
    const parsed = phaseJobData.safeParse(job.data);
    if (!parsed.success) {
      await appendAudit(deps.pool, { actor: 'worker', kind: `${phase}.refused`, detail: { reason: 'malformed job data', job_id: job.id ?? null } });
      throw new UnrecoverableError(`JOB_DATA_INVALID: ${phase} job ${job.id ?? '?'} has malformed data`);
    }
    const { runId } = parsed.data;
    const log = deps.log.child({ run_id: runId, phase, attempt: job.attemptsMade + 1 });
    if (job.id !== jobId(runId, phase)) return refuseSwappedJob(deps, job, phase, runId);
    let claimed: Awaited<ReturnType<typeof claimPhase>>;
    try {
      claimed = await claimPhase(deps.pool, runId, phase, worker.claimReads);
    } catch (thrown) {
      // Postgres unreachable before the phase began: an attempt spent like any other.
      return settleFailure(deps, job, phase, runId, log, thrown);
    }
    if (!claimed) {
      await appendAudit(deps.pool, { actor: 'worker', kind: `${phase}.refused`, detail: { reason: 'unknown run', run_id: runId, job_id: job.id ?? null } });
      throw new UnrecoverableError(`RUN_UNKNOWN: no run ${runId} in Postgres; ${phase} did nothing`);
    }
    const { run } = claimed;
    if (claimed.outOfOrder) {
      const err = new CutterError('PHASE_ANOMALY', `${phase} of run ${runId} was delivered out of its run's order (the run is at ${run.phase ?? 'no phase'}): it did nothing`);
      await appendAudit(deps.pool, { actor: 'worker', kind: 'phase.anomaly', runId, detail: { phase, job_id: job.id ?? null, run_phase: run.phase, reason: 'out of order' } });
      return settleFailure(deps, job, phase, runId, log, err);
    }
    if (!claimed.started) {
      // A late re-delivery of a run that already ended: nothing to do.
      if (isStopped(run.status)) return leaveEndedRun(deps, runId, run.status, log);
      return { skipped: `run already ${run.status}` };
    }
    const started = Date.now();
    try {
      log.info('phase started');
      await reachMoment(`${phase}.before`, runId);
      const result = await worker.process(
        {
          run,
          reads: claimed.reads,
          job,
          progress: async (p) => {
            await job.updateProgress(p);
            await phaseProgress(deps.pool, runId, phase, p);
          },
        },
        deps,
      );
      await reachMoment(`${phase}.after`, runId);
      // The run's lock first, as the claim takes it: the two never wait on each other in opposite orders.
      const endedAs = await withTransaction(deps.pool, async (tx) => {
        // A run that ended while the phase ran (cancelled, rejected, found lost) keeps no result of it.
        const status = (await lockRun(tx, runId)) ?? 'gone';
        if (!inFlight(status)) return status;
        await completePhase(tx, runId, phase, result);
        await worker.complete?.(tx, run, result);
        return null;
      });
      if (endedAs !== null) return isStopped(endedAs) ? leaveEndedRun(deps, runId, endedAs, log) : { skipped: `run already ${endedAs}` };
      log.info({ ms: Date.now() - started }, 'phase completed');
      return result;
    } catch (thrown) {
      // The phase may have failed because its run was stopped under it: that is no failure of the run.
      const stopped = thrown instanceof DelayedError ? null : await stoppedStatus(deps, runId);
      if (stopped) return leaveEndedRun(deps, runId, stopped, log);
      return settleFailure(deps, job, phase, runId, log, thrown);
    }
  };
}

/**
 * A job whose id is not `${runId}.${phase}` for the run its data names: its
 * data was swapped or it was added by hand (Redis write access is enough for
 * either). It does nothing for the run its data names; the anomaly is
 * audited on that run, and the run whose job it was, when its id names one,
 * fails closed: its flow can no longer be trusted to have run its phases.
 */
async function refuseSwappedJob(deps: PhaseDeps, job: Job, phase: Phase, dataRunId: string): Promise<never> {
  const owner = job.id?.endsWith(`.${phase}`) ? job.id.slice(0, -phase.length - 1) : null;
  await appendAudit(deps.pool, { actor: 'worker', kind: 'phase.anomaly', runId: dataRunId, detail: { phase, job_id: job.id ?? null, reason: 'job id does not name this run', job_owner: owner } });
  const message = `${phase} job ${job.id ?? '?'} carries run ${dataRunId}, not the run its id names: it did nothing`;
  if (owner && phaseJobData.safeParse({ runId: owner }).success && (await getRun(deps.pool, owner))) {
    await failClosed(deps, owner, phase, new CutterError('PHASE_ANOMALY', message));
  }
  throw new UnrecoverableError(`PHASE_ANOMALY: ${message}`);
}

/**
 * A failed attempt: on the last one the run fails closed; the error goes back
 * to BullMQ as retryable exactly when this was not the last one.
 */
async function settleFailure(deps: PhaseDeps, job: Job, phase: Phase, runId: string, log: Logger, thrown: unknown): Promise<never> {
  if (thrown instanceof DelayedError) throw thrown;
  const err = coerceError(thrown);
  const unrecoverable = err instanceof UnrecoverableError || (err instanceof CutterError && err.unrecoverable);
  const attempts = job.opts.attempts ?? PHASE_POLICY[phase].attempts;
  const final = unrecoverable || job.attemptsMade + 1 >= attempts;
  log.error({ err, code: errorCode(err), final }, 'phase failed');
  if (final || isPostgresUnavailable(err)) {
    // A Postgres restart or outage: the attempt ends only once Postgres answers
    // again, so the next attempt does not meet the same outage and the last
    // one can still write the failure. Without this an outage longer than the
    // backoffs spent every attempt, and the run stayed "running" for ever with
    // its corpus locked (and, in execute, its kill switch on). One query when
    // Postgres is up.
    const reachable = await waitForPostgres(deps.pool, POSTGRES_OUTAGE_WAIT_MS);
    if (!reachable) log.error({ waited_ms: POSTGRES_OUTAGE_WAIT_MS, final }, 'postgres still unreachable; giving up this attempt');
  }
  if (final) await failClosed(deps, runId, phase, err);
  // Only an unrecoverable error may stop BullMQ's retries: a retryable
  // CutterError (DB_UNREACHABLE, PG_DUMP_FAILED, C4_CORPUS_LOCKED …) that was
  // turned into UnrecoverableError here ended the job after its first attempt
  // while the run, judged not final above, was never failed: a lost run.
  if (err instanceof CutterError && err.unrecoverable) throw new UnrecoverableError(`${err.code}: ${err.message}`);
  throw err;
}

/** The run fails closed: status names the phase, the report says why, and its corpus lock and kill switch are let go, all in one commit. */
async function failClosed(deps: PhaseDeps, runId: string, phase: Phase, err: Error): Promise<void> {
  const code = err instanceof CutterError ? err.code : errorCode(err);
  const expired = code === 'APPROVAL_EXPIRED';
  // The status, the report and the audit row change together, so whoever sees the run ended also sees why,
  // and the event that announces it (docs/notifications.md) exists exactly when it ended.
  // Its corpus lock, staged rows and kill switch go in the same commit: nobody sees the run ended while its switch is still on.
  // The audit row and the report come last: appending holds the chain's lock until the commit, and the
  // report names the chain's head, which then includes the end's own row.
  await withTransaction(deps.pool, async (tx) => {
    const ended = await failRun(tx, { runId, phase, code, message: err.message, status: expired ? 'expired' : 'failed' });
    await releaseCorpusLock(tx, runId);
    await discardStagedSnapshot(tx, runId);
    await disarmSwitchForRun(tx, runId, `worker:${phase}-failed`);
    if (!ended) return;
    await appendAudit(tx, { actor: 'worker', kind: expired ? 'run.expired' : 'run.failed', runId, detail: { phase, code } });
    await saveReport(tx, runId, await buildReport(tx, runId));
  });
  // The later phases' jobs go before this one fails: it keeps its own error, and none of them a child-failed copy.
  await removeRunJobs(deps.queues, runId, { after: phase });
}

/** What a job of a cancelled or rejected run returns; the fleet removes the job once BullMQ has recorded it. */
export interface StoppedRunResult {
  skipped: string;
  run_stopped: true;
}

/** True for the result of leaveEndedRun. */
export function isStoppedRunResult(value: unknown): value is StoppedRunResult {
  return typeof value === 'object' && value !== null && (value as { run_stopped?: unknown }).run_stopped === true;
}

/** The run's status when it was cancelled or rejected; null otherwise. */
async function stoppedStatus(deps: PhaseDeps, runId: string): Promise<StoppedStatus | null> {
  const run = await getRun(deps.pool, runId).catch(() => null);
  return run && isStopped(run.status) ? run.status : null;
}

/**
 * A phase whose run was cancelled or rejected while it ran (or before it was
 * delivered): what it staged is dropped again (discover may have written
 * after the stop), the run's other jobs are removed, and this one completes
 * with a result that tells the fleet to remove it too (an active job cannot
 * be removed while it runs). The phase row says skipped (stop_run).
 */
async function leaveEndedRun(deps: PhaseDeps, runId: string, status: StoppedStatus, log: Logger): Promise<StoppedRunResult> {
  await discardStagedSnapshot(deps.pool, runId);
  await removeRunJobs(deps.queues, runId);
  log.info({ status }, 'run stopped while the phase ran: nothing recorded');
  return { skipped: `run already ${status}`, run_stopped: true };
}
