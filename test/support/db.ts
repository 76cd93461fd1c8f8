import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { createPool, ident, type Pool } from '../../shared/db/pool.js';
import { registerDemoWorkTarget, seedDemo } from '../../shared/demo/seed.js';
import { pollStep } from './poll.js';
import { APP_ROLE } from '../../shared/grants/matrix.js';
import { asApplication, withDatabase } from './services.js';

/** A database of its own for one test file, cloned from the migrated template. */
export interface TestDatabase {
  name: string;
  /** As the superuser: for the tests' own set-up and checks. */
  url: string;
  /** As the application's role (cutter_app, no superuser): what the workers, the board and the CLI under test connect as. */
  appUrl: string;
  pool: Pool;
  /** Drops the database (closing the pool first). */
  drop: () => Promise<void>;
}

/** A fresh name for a database that does not exist yet. */
export function uniqueDatabaseName(label: string): string {
  const slug = label.toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 30);
  return `cutter_t_${slug}_${randomBytes(4).toString('hex')}`;
}

/** The URL of a database on the test server (which need not exist). */
export function testDatabaseUrl(name: string): string {
  return withDatabase(inject('postgresUrl'), name);
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('postgresUrl') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Clones the migrated template into a new database. */
export async function createTestDatabase(label: string, options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = uniqueDatabaseName(label);
  const template = options.migrated === false ? 'template0' : inject('templateDatabase');
  await admin(async (client) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)} ENCODING 'UTF8'`);
        return;
      } catch (err) {
        // 55006: another session is briefly connected to the template.
        if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
        await pollStep(100 * attempt);
      }
    }
  });
  const url = testDatabaseUrl(name);
  const pool = createPool(url, { max: 5, applicationName: 'cutter-test' });
  return {
    name,
    url,
    appUrl: asApplication(url, APP_ROLE),
    pool,
    drop: async () => {
      await pool.end().catch(() => undefined);
      await dropDatabase(name);
    },
  };
}

/**
 * A test database holding the demo corpora and their history (`cutter demo
 * seed`, its approvals signed by a demo sovereign of its own, whose folder
 * goes with the database), with the demo work target registered by `by`.
 */
export async function createDemoDatabase(label: string, by: string): Promise<TestDatabase> {
  const db = await createTestDatabase(label);
  const sovereignDir = mkdtempSync(join(tmpdir(), 'cutter-demo-sovereign-'));
  await seedDemo(db.pool, by, { sovereignDir });
  await registerDemoWorkTarget(db.pool, by);
  return {
    ...db,
    drop: async () => {
      await db.drop();
      rmSync(sovereignDir, { recursive: true, force: true });
    },
  };
}

/** Seeds the demo corpus into a database a test made itself, with a demo sovereign in a scratch folder (removed again). */
export async function seedDemoDatabase(pool: Pool, by: string): Promise<void> {
  const sovereignDir = mkdtempSync(join(tmpdir(), 'cutter-demo-sovereign-'));
  try {
    await seedDemo(pool, by, { sovereignDir });
  } finally {
    rmSync(sovereignDir, { recursive: true, force: true });
  }
}

/** Drops a database, disconnecting anyone still on it. */
export async function dropDatabase(name: string): Promise<void> {
  if (process.env['KEEP_TEST_DB'] === '1') return;
  await admin((client) => client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
}

/** One query on a connection of its own, closed after (for databases a test creates, migrates or restores). */
export async function queryOnce<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}
