import { Worker } from 'bullmq';
import type { Config } from '../shared/config.js';
import { createPool } from '../shared/db/pool.js';
import { PHASES, WORKER_LOCKS, type Phase } from '../shared/jobs/catalog.js';
import { openPhaseQueues } from '../shared/jobs/queues.js';
import type { Logger } from '../shared/logger.js';
import { outageLog } from '../shared/outage-log.js';
import { createRedis } from '../shared/redis.js';
import { startReconciler, type Reconciler } from '../shared/runs/reconcile.js';
import type { PhaseDeps, PhaseProcessor, PhaseWorker } from './context.js';
import { startNotifier, type NotifierOptions } from './notify/start.js';
import { isStoppedRunResult, phaseRunner } from './phase-runner.js';
import { PHASE_WORKERS } from './processors.js';

export type StandIns = Partial<{ [P in Phase]: PhaseProcessor<P> }>;

function runnerFor<P extends Phase>(phase: P, deps: PhaseDeps, standIns: StandIns | undefined) {
  const worker: PhaseWorker<P> = PHASE_WORKERS[phase];
  const standIn: PhaseProcessor<P> | undefined = standIns?.[phase];
  return phaseRunner(phase, standIn ? { ...worker, process: standIn } : worker, deps);
}

export interface Fleet {
  phases: Phase[];
  deps: PhaseDeps;
  /** Fails runs whose jobs Redis lost (see shared/runs/reconcile.ts). */
  reconciler: Reconciler;
  /** Waits for running jobs to finish, then closes every connection. */
  close: () => Promise<void>;
}

export interface FleetOptions {
  cfg: Config;
  log: Logger;
  phases?: Phase[];
  /** Replaces phases' processors, keeping what each declares for its claim and completion (tests stand in for a phase this way). */
  processors?: StandIns;
  concurrency?: number;
  /** Reconciler timing (tests shorten it); defaults in shared/runs/reconcile.ts. */
  reconcile?: { intervalMs?: number; enqueueGraceMs?: number };
  /** Notification timing (tests shorten it); defaults in workers/notify/start.ts. */
  notify?: Pick<NotifierOptions, 'sweepIntervalMs' | 'timeoutMs'>;
}

/**
 * Starts one BullMQ worker per requested phase in this process. Any number of
 * fleets on any machines can serve the same queues.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const { cfg, log } = options;
  const phases = options.phases ?? [...PHASES];
  const outage = outageLog(log);
  const pool = createPool(cfg.DATABASE_URL, {
    max: 10,
    applicationName: 'cutter-worker',
    // The worker lives on: the job whose connection dropped fails and is retried (or fails its run closed).
    onConnectionError: (err) => outage('postgres', err, 'postgres connection lost'),
  });
  const redis = createRedis(cfg.REDIS_URL, 'worker');
  const queues = openPhaseQueues(redis, cfg.CUTTER_QUEUE_PREFIX);
  // The reconciler asks these queues every few seconds: during a Redis outage
  // their connection errors are logged here instead of BullMQ's console.error.
  for (const queue of Object.values(queues)) queue.on('error', (err) => outage('redis', err, 'redis connection error (queues)'));
  const deps: PhaseDeps = { pool, cfg, log, redis, queues };
  const connections = phases.map(() => createRedis(cfg.REDIS_URL, 'worker'));
  const workers = phases.map((phase, i) => {
    const worker = new Worker(phase, runnerFor(phase, deps, options.processors), {
      connection: connections[i] ?? redis,
      prefix: cfg.CUTTER_QUEUE_PREFIX,
      concurrency: options.concurrency ?? 4,
      ...WORKER_LOCKS,
    });
    worker.on('error', (err) => outage('redis', err, 'worker error'));
    // A job of a cancelled or rejected run was active when its run's jobs were removed: it goes now that it is no longer locked.
    worker.on('completed', (job, result) => {
      if (!isStoppedRunResult(result) || !job.id) return;
      queues[phase].remove(job.id, { removeChildren: false }).catch((err: unknown) => log.warn({ err, phase, job_id: job.id }, 'could not remove a stopped run\'s job'));
    });
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // Every fleet reconciles, so a flow lost with Redis is found without an
  // operator having to remember a command; passes of several fleets settle
  // each run once (the decision is taken under the run's row lock).
  const reconciler = startReconciler(
    { pool, queues, prefix: cfg.CUTTER_QUEUE_PREFIX, log: log.child({ component: 'reconciler' }), ...(options.reconcile?.enqueueGraceMs === undefined ? {} : { enqueueGraceMs: options.reconcile.enqueueGraceMs }) },
    options.reconcile?.intervalMs,
  );
  // Beside the phases, never in their way: its own connections and queue (null without CUTTER_WEBHOOK_URLS).
  const notifier = await startNotifier({ cfg, log, pool, ...options.notify });
  log.info({ phases, prefix: cfg.CUTTER_QUEUE_PREFIX }, 'workers ready');
  return {
    phases,
    deps,
    reconciler,
    close: async () => {
      // Stop the loop first; a pass waiting on an absent Redis ends when its connection is closed below.
      const reconciling = reconciler.stop();
      await Promise.all([...workers.map((w) => w.close()), notifier?.close()]);
      await Promise.all(Object.values(queues).map((q) => q.close()));
      for (const c of [...connections, redis]) c.disconnect();
      await reconciling;
      await pool.end();
    },
  };
}
