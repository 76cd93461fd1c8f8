import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../support/redis-server.js';

let server: PrivateRedis | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function roundTrip(url: string, write?: string): Promise<string | null> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    if (write !== undefined) await redis.set('k', write);
    return await redis.get('k');
  } finally {
    redis.disconnect();
  }
}

describe('the private redis-server helper', () => {
  it('with AOF, a write survives kill -9 and restart', async () => {
    server = await startPrivateRedis({ appendOnly: true });
    expect(server.url).not.toContain(':6379');
    await roundTrip(server.url, 'kept');
    const before = server.pid();
    await server.kill();
    await server.restart();
    expect(server.pid()).not.toBe(before);
    expect(await roundTrip(server.url)).toBe('kept');
  });

  it('without persistence, kill -9 loses the write', async () => {
    server = await startPrivateRedis({ appendOnly: false });
    await roundTrip(server.url, 'lost');
    await server.kill();
    await server.restart();
    expect(await roundTrip(server.url)).toBeNull();
  });
});
