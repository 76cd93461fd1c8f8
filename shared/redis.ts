import { Redis } from 'ioredis';

/**
 * Redis connections. Workers need maxRetriesPerRequest: null (BullMQ blocks
 * on commands); short-lived producer/CLI connections fail fast instead.
 */
export function createRedis(url: string, kind: 'worker' | 'client' = 'client'): Redis {
  return kind === 'worker'
    ? new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true })
    : new Redis(url, { maxRetriesPerRequest: 3, connectTimeout: 5000 });
}

export interface RedisDurability {
  appendonly: boolean;
  maxmemoryPolicy: string;
  /** True when a crash cannot silently lose flows (FIELD-NOTES: AOF + noeviction). */
  durable: boolean;
}

/** Reads the persistence settings that decide whether BullMQ can lose a flow. */
export async function redisDurability(redis: Redis): Promise<RedisDurability> {
  const get = async (name: string): Promise<string> => {
    const reply = (await redis.call('CONFIG', 'GET', name)) as string[];
    return reply[1] ?? '';
  };
  const appendonly = (await get('appendonly')) === 'yes';
  const maxmemoryPolicy = await get('maxmemory-policy');
  return { appendonly, maxmemoryPolicy, durable: appendonly && maxmemoryPolicy === 'noeviction' };
}
