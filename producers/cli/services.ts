import type { Config } from '../../shared/config.js';
import type { Pool } from '../../shared/db/pool.js';
import { CutterError } from '../../shared/errors.js';
import { phasesFor, type RunMode } from '../../shared/jobs/catalog.js';
import { countWorkers } from '../../shared/jobs/workers.js';
import { redactUrl } from '../../shared/logger.js';
import { createRedis, type RedisClient } from '../../shared/redis.js';

/**
 * What a command checks before it writes anything: each service answers, or
 * the operator is told which variable points at the one that does not.
 * Bounded so a command never hangs on a service that is down (ioredis and
 * BullMQ otherwise wait for a connection for ever).
 */

/** Longest a command waits for Redis or PostgreSQL to answer before it gives up. */
export const SERVICE_WAIT_MS = 8_000;

// Why a connection failed, in the operator's words, by errno or SQLSTATE.
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the server running on that host and port?)',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  '3D000': 'the database does not exist (cutter db migrate creates it)',
  '28P01': 'password authentication failed',
  '28000': 'the server refused this login',
  '57P03': 'the server is starting up or shutting down',
};

// ioredis's Cluster keeps its nodes' socket errors (ECONNREFUSED…) to itself; this is all it says when no seed node answered.
const NO_SEED = /None of startup nodes is available/;
const NO_SEED_REASON = 'none of the cluster\'s seed nodes answered (is the cluster running on those hosts and ports?)';

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function reasonOf(err: unknown): string {
  const code = errCode(err);
  return (code && REASONS[code]) ?? (err instanceof Error ? err.message : String(err));
}

/**
 * A failure to reach PostgreSQL as the CLI reports it: DATABASE_URL named,
 * its password redacted, exit 2. Null when err is something else (a refused
 * statement is the command's own error).
 */
export function databaseUnreachable(err: unknown, cfg: Pick<Config, 'DATABASE_URL'>): CutterError | null {
  const code = errCode(err);
  const connectionFailure =
    code !== undefined && (code in REASONS || code.startsWith('08'))
      ? true
      : err instanceof Error && /timeout exceeded when trying to connect|Connection terminated/.test(err.message);
  if (!connectionFailure) return null;
  return new CutterError('DATABASE_UNREACHABLE', `DATABASE_URL ${redactUrl(cfg.DATABASE_URL)}: ${reasonOf(err)}`, { kind: 'bad_input', cause: err });
}

/** PostgreSQL answers a query, or DATABASE_UNREACHABLE. */
export async function requirePostgres(pool: Pool, cfg: Pick<Config, 'DATABASE_URL'>): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw databaseUnreachable(err, cfg) ?? err;
  }
}

/**
 * A connected Redis client that never retries in the background, or
 * REDIS_UNREACHABLE: one attempt, bounded, and no "Unhandled error event"
 * noise. The caller owns (and disconnects) the client.
 */
export async function connectRedis(cfg: Pick<Config, 'REDIS_URL'>): Promise<RedisClient> {
  const redis = createRedis(cfg.REDIS_URL, 'once', { connectTimeout: SERVICE_WAIT_MS });
  let last: unknown;
  redis.on('error', (err) => {
    last = err;
  });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (err) {
    redis.disconnect();
    throw new CutterError('REDIS_UNREACHABLE', `REDIS_URL ${redactUrl(cfg.REDIS_URL)}: ${NO_SEED.test(messageOf(err)) ? NO_SEED_REASON : reasonOf(last ?? err)}`, { kind: 'bad_input', cause: err });
  }
}

/**
 * Every phase queue of a run of this mode has a live worker, or
 * NO_WORKERS naming the ones without: a run enqueued now would sit until
 * precheck failed it, and the operator would see nothing but the wait.
 */
export async function requireWorkers(redis: RedisClient, cfg: Pick<Config, 'CUTTER_QUEUE_PREFIX'>, mode: RunMode): Promise<void> {
  const idle = (await countWorkers(redis, cfg.CUTTER_QUEUE_PREFIX, phasesFor(mode))).filter(([, n]) => n === 0).map(([phase]) => phase);
  if (idle.length === 0) return;
  throw new CutterError(
    'NO_WORKERS',
    `no worker serves the queue(s) ${idle.join(', ')} under prefix ${cfg.CUTTER_QUEUE_PREFIX}: start \`cutter worker\` with the same REDIS_URL and CUTTER_QUEUE_PREFIX, or pass --allow-no-workers to enqueue anyway`,
    { kind: 'refused' },
  );
}
