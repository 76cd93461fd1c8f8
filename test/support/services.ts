import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { Redis } from 'ioredis';

/**
 * Where the test services are: REDIS_URL / DATABASE_URL when set, the local
 * defaults otherwise; when neither answers and a Docker engine exists,
 * throwaway containers from testcontainers.
 */
export interface Services {
  /** A URL of the PostgreSQL server (its database part is replaced per test). */
  postgresUrl: string;
  redisUrl: string;
  stop: () => Promise<void>;
}

const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The password the tests give the application's role (global-setup.ts); never a production value. */
export const APP_TEST_PASSWORD = 'cutter-app-test-only';
const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined); // connect() rejects with the same error
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function dockerEngineAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** Finds (or, with Docker, starts) PostgreSQL and Redis for the test run. */
export async function resolveServices(): Promise<Services> {
  const pgUrl = withDatabase(process.env['DATABASE_URL'] ?? DEFAULT_PG, 'postgres');
  const redisUrl = process.env['REDIS_URL'] ?? DEFAULT_REDIS;
  const [pgOk, redisOk] = await Promise.all([postgresAnswers(pgUrl), redisAnswers(redisUrl)]);
  if (pgOk && redisOk) return { postgresUrl: pgUrl, redisUrl, stop: () => Promise.resolve() };
  if (!dockerEngineAvailable()) {
    const missing = [pgOk ? null : `PostgreSQL at ${pgUrl}`, redisOk ? null : `Redis at ${redisUrl}`].filter(Boolean);
    throw new Error(
      `${missing.join(' and ')} did not answer and no Docker engine is available: start the services ` +
        '(docker compose up -d, or see README "Services") or point DATABASE_URL / REDIS_URL at them',
    );
  }
  const { GenericContainer, Wait } = await import('testcontainers');
  const stops: (() => Promise<unknown>)[] = [];
  let postgresUrl = pgUrl;
  let redis = redisUrl;
  if (!pgOk) {
    const c = await new GenericContainer('postgres:16')
      .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start();
    postgresUrl = `postgres://postgres:postgres@${c.getHost()}:${c.getMappedPort(5432)}/postgres`;
    stops.push(() => c.stop());
  }
  if (!redisOk) {
    const c = await new GenericContainer('redis:7').withExposedPorts(6379).start();
    redis = `redis://${c.getHost()}:${c.getMappedPort(6379)}`;
    stops.push(() => c.stop());
  }
  return { postgresUrl, redisUrl: redis, stop: async () => void (await Promise.all(stops.map((s) => s()))) };
}

/** The same server URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A URL of the same server and database as the application's role (shared/grants/matrix.ts APP_ROLE) logs in. */
export function asApplication(url: string, role: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = APP_TEST_PASSWORD;
  return u.toString();
}
