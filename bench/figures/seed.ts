import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { config } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, ident, splitDatabaseUrl } from '../../shared/db/pool.js';
import { seedDemo } from '../../shared/demo/seed.js';
import { timed, type Bench } from '../harness.js';

/** Builds a scratch database name on the configured server. */
export function scratchUrl(label: string): string {
  const u = new URL(config().DATABASE_URL);
  u.pathname = `/cutter_bench_${label}_${process.pid}`;
  return u.toString();
}

/** Drops a scratch database. */
export async function dropScratch(url: string): Promise<void> {
  const { database, maintenanceUrl } = splitDatabaseUrl(url);
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
  await client.end();
}

/**
 * Leaves the server as a figure found it quiet: the previous figure's dirty
 * pages written out (CHECKPOINT) and its autovacuum work finished, waiting at
 * most maxWaitMs. Without it a figure after a million-row one (the dry run
 * after the snapshot plan) pays for that figure's writes while its floor,
 * which may not touch PostgreSQL at all, does not.
 */
export async function settleServer(maxWaitMs = 60_000): Promise<{ waitedMs: number }> {
  const { maintenanceUrl } = splitDatabaseUrl(config().DATABASE_URL);
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  const start = Date.now();
  try {
    await client.query('CHECKPOINT');
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
      );
      if ((rows[0]?.n ?? 0) === 0 || Date.now() - start >= maxWaitMs) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await client.end();
  }
  return { waitedMs: Date.now() - start };
}

/**
 * Migrate + seed of the demo corpus beside the floor of a bare CREATE DATABASE
 * + one INSERT of 158 rows: what the schema, constraints and audit cost.
 */
export const seedBench: Bench = {
  name: 'demo-seed',
  async run({ log }) {
    const url = scratchUrl('seed');
    const floorUrl = scratchUrl('seedfloor');
    try {
      const cutter = await timed(async () => {
        await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
        const pool = createPool(url);
        const sovereignDir = mkdtempSync(join(tmpdir(), 'cutter-bench-seed-'));
        await seedDemo(pool, 'bench', { sovereignDir, execRole: config().CUTTER_EXEC_ROLE });
        await pool.end();
        rmSync(sovereignDir, { recursive: true, force: true });
      });
      const floor = await timed(async () => {
        const { database, maintenanceUrl } = splitDatabaseUrl(floorUrl);
        const admin = new pg.Client({ connectionString: maintenanceUrl });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${ident(database)}`);
        await admin.end();
        const client = new pg.Client({ connectionString: floorUrl });
        await client.connect();
        await client.query('CREATE TABLE u (k text PRIMARY KEY, s text, body text)');
        await client.query(`INSERT INTO u SELECT 'K/' || g, 'draft', 'body ' || g FROM generate_series(1, 158) g`);
        await client.end();
      });
      log(`cutter ${cutter.seconds.toFixed(2)} s, floor ${floor.seconds.toFixed(2)} s`);
      return [
        {
          name: 'db migrate + demo seed (158 units, fresh database)',
          value: `${cutter.seconds.toFixed(2)} s`,
          floor: `${floor.seconds.toFixed(2)} s (CREATE DATABASE + one table + one INSERT)`,
          ratio: cutter.seconds / floor.seconds,
          goal: 'reported',
          met: null,
        },
      ];
    } finally {
      await dropScratch(url);
      await dropScratch(floorUrl);
    }
  },
};
