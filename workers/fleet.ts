import { Queue, Worker } from 'bullmq';
import type { Config } from '../shared/config.js';
import { createPool } from '../shared/db/pool.js';
import { PHASES, WORKER_LOCKS, type Phase } from '../shared/jobs/catalog.js';
import type { Logger } from '../shared/logger.js';
import { createRedis } from '../shared/redis.js';
import type { PhaseDeps, PhaseProcessor } from './context.js';
import { phaseRunner } from './phase-runner.js';
import { PROCESSORS } from './processors.js';

export interface Fleet {
  phases: Phase[];
  deps: PhaseDeps;
  /** Waits for running jobs to finish, then closes every connection. */
  close: () => Promise<void>;
}

export interface FleetOptions {
  cfg: Config;
  log: Logger;
  phases?: Phase[];
  /** Replaces processors (tests inject faults this way). */
  processors?: Partial<Record<Phase, PhaseProcessor>>;
  concurrency?: number;
}

/**
 * Starts one BullMQ worker per requested phase in this process. Any number of
 * fleets on any machines can serve the same queues.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const { cfg, log } = options;
  const phases = options.phases ?? [...PHASES];
  const pool = createPool(cfg.DATABASE_URL, { max: 10, applicationName: 'cutter-worker' });
  const redis = createRedis(cfg.REDIS_URL, 'worker');
  const queues = Object.fromEntries(
    PHASES.map((p) => [p, new Queue(p, { connection: redis, prefix: cfg.CUTTER_QUEUE_PREFIX })]),
  ) as Record<Phase, Queue>;
  const deps: PhaseDeps = { pool, cfg, log, redis, queues };
  const connections = phases.map(() => createRedis(cfg.REDIS_URL, 'worker'));
  const workers = phases.map((phase, i) => {
    const processor = options.processors?.[phase] ?? PROCESSORS[phase];
    const worker = new Worker(phase, phaseRunner(phase, processor, deps), {
      connection: connections[i] ?? redis,
      prefix: cfg.CUTTER_QUEUE_PREFIX,
      concurrency: options.concurrency ?? 4,
      ...WORKER_LOCKS,
    });
    worker.on('error', (err) => log.error({ err, phase }, 'worker error'));
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log.info({ phases, prefix: cfg.CUTTER_QUEUE_PREFIX }, 'workers ready');
  return {
    phases,
    deps,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(queues).map((q) => q.close()));
      for (const c of [...connections, redis]) c.disconnect();
      await pool.end();
    },
  };
}
