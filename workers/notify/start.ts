import { Queue, Worker } from 'bullmq';
import type { Config } from '../../shared/config.js';
import type { Pool } from '../../shared/db/pool.js';
import type { Logger } from '../../shared/logger.js';
import { webhookEndpoints } from '../../shared/notify/endpoints.js';
import { NOTIFY_POLICY, NOTIFY_QUEUE } from '../../shared/notify/policy.js';
import { registerEndpoints } from '../../shared/notify/store.js';
import { createRedis } from '../../shared/redis.js';
import { startDispatcher } from './dispatcher.js';
import { deliverNotification, notifyBackoff } from './process.js';

export interface NotifierOptions {
  cfg: Config;
  log: Logger;
  pool: Pool;
  /** How often the dispatcher sweeps for events LISTEN missed (default 5 s). */
  sweepIntervalMs?: number;
  /** How long one POST may take (default NOTIFY_POLICY.timeoutMs). */
  timeoutMs?: number;
  concurrency?: number;
}

export interface Notifier {
  close: () => Promise<void>;
}

/**
 * Starts the notify side of a worker process: the dispatcher and the notify
 * worker, on Redis connections of their own, so a slow or absent receiver
 * holds notify jobs only, never a phase. Nothing starts without
 * CUTTER_WEBHOOK_URLS.
 */
export async function startNotifier(o: NotifierOptions): Promise<Notifier | null> {
  const { cfg } = o;
  const secret = cfg.CUTTER_WEBHOOK_SECRET;
  if (cfg.CUTTER_WEBHOOK_URLS.length === 0 || secret === undefined) return null;
  const endpoints = webhookEndpoints(cfg.CUTTER_WEBHOOK_URLS);
  const log = o.log.child({ component: 'notify' });
  await registerEndpoints(o.pool, endpoints);
  // Fails fast while Redis is away: the sweep that adds jobs holds outbox rows locked meanwhile.
  const queueConnection = createRedis(cfg.REDIS_URL, 'client');
  const workerConnection = createRedis(cfg.REDIS_URL, 'worker');
  const queue = new Queue(NOTIFY_QUEUE, { connection: queueConnection, prefix: cfg.CUTTER_QUEUE_PREFIX });
  queue.on('error', (err) => log.warn({ err }, 'notify queue connection error'));
  const deps = { pool: o.pool, log, endpoints, secret, boardUrl: cfg.CUTTER_BOARD_URL, timeoutMs: o.timeoutMs ?? NOTIFY_POLICY.timeoutMs };
  const worker = new Worker(NOTIFY_QUEUE, (job) => deliverNotification(job, deps), {
    connection: workerConnection,
    prefix: cfg.CUTTER_QUEUE_PREFIX,
    concurrency: o.concurrency ?? 8,
    settings: { backoffStrategy: notifyBackoff },
  });
  worker.on('error', (err) => log.error({ err }, 'notify worker error'));
  await worker.waitUntilReady();
  const dispatcher = startDispatcher({ pool: o.pool, databaseUrl: cfg.DATABASE_URL, queue, endpoints, log, sweepIntervalMs: o.sweepIntervalMs ?? 5000 });
  log.info({ endpoints: endpoints.map((e) => e.label) }, 'notifications ready');
  return {
    close: async () => {
      await dispatcher.close();
      await worker.close();
      await queue.close();
      queueConnection.disconnect();
      workerConnection.disconnect();
    },
  };
}
