import type { Queue } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import { loadTrustedKeys, readTrustedKeys } from '../shared/approval/keys.js';
import type { ApprovalDeps } from '../shared/approval/submit.js';
import type { Config } from '../shared/config.js';
import { createPool, type Pool } from '../shared/db/pool.js';
import type { Phase } from '../shared/jobs/catalog.js';
import { openPhaseQueues } from '../shared/jobs/queues.js';
import type { Logger } from '../shared/logger.js';
import { createRedis } from '../shared/redis.js';
import type { BoardCredentials } from './auth.js';
import { createMetrics, type BoardMetrics } from './metrics.js';

/** Tunables of the board; the defaults are what `cutter board` runs with. */
export interface BoardOptions {
  /** Per client address. */
  approvalRateLimit: { windowMs: number; limit: number };
  /** How long a POST waits for the gate to become delayed before leaving it to the sweeper. */
  releaseWaitMs: number;
  sweepIntervalMs: number;
}

export const DEFAULT_BOARD_OPTIONS: BoardOptions = {
  approvalRateLimit: { windowMs: 60_000, limit: 60 },
  releaseWaitMs: 10_000,
  sweepIntervalMs: 2000,
};

/** Everything the board's routes use, created once per server. */
export interface BoardDeps {
  cfg: Config;
  log: Logger;
  pool: Pool;
  redis: RedisClient;
  /** One Queue handle per phase under CUTTER_QUEUE_PREFIX (Bull Board shows them; approvals promote the gate). */
  queues: Record<Phase, Queue>;
  approvals: ApprovalDeps;
  options: BoardOptions;
  /** What opens Bull Board (HTTP basic). */
  credentials: BoardCredentials;
  metrics: BoardMetrics;
}

/** Opens the board's connections and loads the trusted keys; close() releases them. */
export async function createBoardDeps(args: {
  cfg: Config;
  log: Logger;
  credentials: BoardCredentials;
  options?: Partial<BoardOptions>;
}): Promise<{ deps: BoardDeps; close: () => Promise<void> }> {
  const { cfg, log } = args;
  const options = { ...DEFAULT_BOARD_OPTIONS, ...args.options };
  // A bad key file stops the board at start, not at the first approval (later, it makes approvals answer 503).
  const keys = await loadTrustedKeys(cfg.SOVEREIGN_KEYS);
  if (keys.byId.size === 0) log.warn('SOVEREIGN_KEYS is not set: every approval will be refused as from an unknown key');
  const pool = createPool(cfg.DATABASE_URL, { max: 10, applicationName: 'cutter-board' });
  const redis = createRedis(cfg.REDIS_URL, 'worker');
  const queues = openPhaseQueues(redis, cfg.CUTTER_QUEUE_PREFIX);
  // A Redis outage must show on /healthz, not crash the board: an EventEmitter
  // 'error' without a listener throws.
  redis.on('error', (err: Error) => log.debug({ err: err.message }, 'board redis error'));
  for (const q of Object.values(queues)) q.on('error', (err: Error) => log.debug({ err: err.message, queue: q.name }, 'board queue error'));
  const approvals: ApprovalDeps = {
    pool,
    // Read at every use: a sovereign key copied in or removed counts from the next request on.
    get keys() {
      return readTrustedKeys(cfg.SOVEREIGN_KEYS);
    },
    quorum: cfg.SOVEREIGN_QUORUM,
    queues,
    log,
    releaseWaitMs: options.releaseWaitMs,
  };
  return {
    deps: { cfg, log, pool, redis, queues, approvals, options, credentials: args.credentials, metrics: createMetrics(pool, queues) },
    close: async () => {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      redis.disconnect();
      await pool.end();
    },
  };
}
