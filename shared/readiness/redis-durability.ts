import type { Config } from '../config.js';
import { describeDurability, redisDurability, type RedisClient } from '../redis.js';
import { blocker, messageOf, type PackageResult } from './types.js';

/**
 * Redis durability: BullMQ holds every run's flow in Redis, so a Redis that
 * may forget (no AOF) or evict keys can lose a run mid-flight. Read with
 * CONFIG GET, as precheck reads it: on a Redis Cluster, of every master.
 */

export const REDIS_DURABILITY = 'Redis durability';

const FIX = 'Redis with appendonly yes and maxmemory-policy noeviction (CONFIG SET appendonly yes; CONFIG SET maxmemory-policy noeviction; and the same in redis.conf)';

/** appendonly + noeviction, or a volatile Redis that is explicitly allowed (not blocking then). */
export async function checkRedisDurability(cfg: Config, redis: RedisClient): Promise<PackageResult> {
  let d;
  try {
    d = await redisDurability(redis);
  } catch (err) {
    const why = `CONFIG GET was refused (${messageOf(err)}); precheck reads the same settings and would fail the run`;
    return {
      name: REDIS_DURABILITY,
      runnable: 'NO',
      verified: 'CONFIG GET appendonly / maxmemory-policy: refused',
      checks: [why],
      blockers: [blocker('operator', "CONFIG GET allowed for cutter's Redis user, on a Redis with appendonly yes and maxmemory-policy noeviction", why)],
      failure: null,
    };
  }
  const seen = `CONFIG GET: ${describeDurability(d)}`;
  if (d.durable) return { name: REDIS_DURABILITY, runnable: 'YES', verified: `${seen}: a crash cannot silently lose a flow`, checks: [seen], blockers: [], failure: null };
  const allowed = cfg.CUTTER_ALLOW_VOLATILE_REDIS;
  const why = `Redis is volatile (${seen.replace('CONFIG GET: ', '')}): a Redis crash or eviction could lose an in-flight run (it would then fail closed, never half-applied)`;
  return {
    name: REDIS_DURABILITY,
    runnable: 'NO',
    verified: `${seen}: volatile${allowed ? ', allowed by CUTTER_ALLOW_VOLATILE_REDIS=true' : ''}`,
    checks: [seen],
    blockers: [
      allowed
        ? blocker('operator', `${FIX}; until then allowed by CUTTER_ALLOW_VOLATILE_REDIS=true`, `${why}; allowed deliberately, so it does not block`, { blocking: false })
        : blocker('operator', `${FIX}, or CUTTER_ALLOW_VOLATILE_REDIS=true as a deliberate choice`, `${why}; precheck refuses a live run on it (PRECHECK_REDIS_VOLATILE)`),
    ],
    failure: null,
  };
}
