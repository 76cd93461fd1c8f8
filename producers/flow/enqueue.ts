import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FlowProducer } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import { appendAudit } from '../../shared/audit/append.js';
import { isPgError } from '../../shared/db/errors.js';
import { withTransaction, type Pool } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { fileSha256 } from '../../shared/file-hash.js';
import type { RunMode } from '../../shared/jobs/catalog.js';
import { removeRunJobs } from '../../shared/jobs/cleanup.js';
import { openPhaseQueues } from '../../shared/jobs/queues.js';
import { buildReport } from '../../shared/runs/report.js';
import { isStopped } from '../../shared/runs/status.js';
import { failRun, getRun, getRunByIdempotencyKey, insertRun, newRunId, saveReport, type NewRun } from '../../shared/runs/store.js';
import { acquireCorpusLock, releaseCorpusLock } from '../../shared/targets/lock.js';
import { requireC3 } from '../../shared/targets/criteria.js';
import { requireTarget } from '../../shared/targets/registry.js';
import { buildRunFlow } from './tree.js';

export interface EnqueueRequest {
  target: string;
  snapshotPath: string;
  mode: RunMode;
  operator: string;
  idempotencyKey?: string | undefined;
  approvalWindowS: number;
}

export interface EnqueueDeps {
  pool: Pool;
  redis: RedisClient;
  prefix: string;
}

/**
 * Creates the run row, takes the corpus lock (C4) in the same transaction,
 * then adds the flow. A second enqueue with the same idempotency key returns
 * the first run instead of starting another.
 */
export async function enqueueRun(deps: EnqueueDeps, req: EnqueueRequest): Promise<{ runId: string; created: boolean }> {
  if (req.idempotencyKey) {
    const existing = await getRunByIdempotencyKey(deps.pool, req.idempotencyKey);
    if (existing) return { runId: existing.run_id, created: false };
  }
  const target = await requireTarget(deps.pool, req.target);
  await requireC3(deps.pool, target, req.mode);
  const snapshotPath = resolve(req.snapshotPath);
  const info = await stat(snapshotPath).catch(() => null);
  if (!info?.isFile()) {
    throw new CutterError('SNAPSHOT_NOT_FOUND', `snapshot ${req.snapshotPath} is not a readable file`, { kind: 'bad_input' });
  }
  const snapshotSha256 = await fileSha256(snapshotPath);
  const runId = newRunId();
  try {
    await insertRunAndLock(
      deps.pool,
      {
        runId,
        target: target.name,
        corpus: target.corpus,
        mode: req.mode,
        operator: req.operator,
        snapshotPath,
        snapshotSha256,
        idempotencyKey: req.idempotencyKey ?? null,
        approvalWindowS: req.approvalWindowS,
      },
      { snapshot_sha256: snapshotSha256 },
    );
  } catch (err) {
    // A retry racing the original with the same key: the check above saw no
    // run yet, and the key's UNIQUE index made this insert wait for the
    // original's commit and then fail. It is the same request, so the caller
    // gets the original run, as it would a moment later.
    if (req.idempotencyKey && isPgError(err, '23505')) {
      const original = await getRunByIdempotencyKey(deps.pool, req.idempotencyKey);
      if (original) return { runId: original.run_id, created: false };
    }
    throw err;
  }
  await addRunFlow(deps, { runId, mode: req.mode, approvalWindowS: req.approvalWindowS, operator: req.operator });
  return { runId, created: true };
}

/**
 * The run row, the corpus lock (C4) and the audit event in one transaction:
 * a refused lock leaves no run behind.
 */
export async function insertRunAndLock(pool: Pool, run: NewRun, audit: Record<string, unknown>): Promise<void> {
  await withTransaction(pool, async (client) => {
    await insertRun(client, run);
    await acquireCorpusLock(client, { corpus: run.corpus, runId: run.runId });
    await appendAudit(client, { actor: run.operator, kind: 'run.enqueued', runId: run.runId, detail: { target: run.target, mode: run.mode, ...audit } });
  });
}

/**
 * Adds the run's flow (one job per phase). A flow that cannot be added fails
 * the run and lets its corpus go; a cancel that came in meanwhile removes
 * the jobs at once.
 */
export async function addRunFlow(deps: EnqueueDeps, run: { runId: string; mode: RunMode; approvalWindowS: number; operator: string }): Promise<void> {
  const { runId } = run;
  const producer = new FlowProducer({ connection: deps.redis, prefix: deps.prefix });
  try {
    await producer.add(buildRunFlow({ runId, mode: run.mode, approvalWindowMs: run.approvalWindowS * 1000, prefix: deps.prefix }));
  } catch (err) {
    await failUnenqueued(deps.pool, { runId, operator: run.operator, message: `could not add the flow: ${(err as Error).message}` });
    throw new CutterError('ENQUEUE_FAILED', `could not add the run's jobs to Redis: ${(err as Error).message}`, { cause: err });
  } finally {
    await producer.close();
  }
  await removeIfCancelledMeanwhile(deps, runId);
}

/**
 * A run whose flow never reached Redis ends as a failed phase would, in one
 * commit: its status, its corpus lock let go, a run.failed audit row (which
 * announces it), and its report, last, naming the audit chain's head.
 */
async function failUnenqueued(pool: Pool, args: { runId: string; operator: string; message: string }): Promise<void> {
  await withTransaction(pool, async (tx) => {
    const ended = await failRun(tx, { runId: args.runId, phase: 'precheck', code: 'ENQUEUE_FAILED', message: args.message });
    await releaseCorpusLock(tx, args.runId);
    if (!ended) return;
    await appendAudit(tx, { actor: args.operator, kind: 'run.failed', runId: args.runId, detail: { phase: 'precheck', code: 'ENQUEUE_FAILED' } });
    await saveReport(tx, args.runId, await buildReport(tx, args.runId));
  });
}

/**
 * A cancel that committed between the run row and the flow found no jobs to
 * remove; the flow's jobs go now, so a cancelled run leaves nothing waiting
 * even with no worker running to meet them.
 */
async function removeIfCancelledMeanwhile(deps: EnqueueDeps, runId: string): Promise<void> {
  const run = await getRun(deps.pool, runId);
  if (!run || !isStopped(run.status)) return;
  const queues = openPhaseQueues(deps.redis, deps.prefix);
  try {
    await removeRunJobs(queues, runId);
  } finally {
    await Promise.all(Object.values(queues).map((q) => q.close()));
  }
}
