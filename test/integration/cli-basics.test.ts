import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { dropDatabase, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';
import pg from 'pg';

const created: string[] = [];
// The demo seed keeps its sovereign's keys under $HOME/.cutter-demo.
const home = mkdtempSync(join(tmpdir(), 'cutter-cli-basics-'));
afterAll(async () => {
  for (const name of created) await dropDatabase(name);
  rmSync(home, { recursive: true, force: true });
});

describe('the cutter command', () => {
  it('REDIS_URL=nope cutter db migrate exits 2 with one line naming REDIS_URL', async () => {
    const name = uniqueDatabaseName('never');
    const result = await runCli(['db', 'migrate'], { REDIS_URL: 'nope', DATABASE_URL: testDatabaseUrl(name) });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/REDIS_URL/);
    expect(result.stdout).toBe('');
    // Nothing was touched: the database was not created.
    const client = new pg.Client({ connectionString: testDatabaseUrl('postgres') });
    await client.connect();
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    await client.end();
    expect(found.rowCount).toBe(0);
  });

  it('migrate + demo seed, twice, on a fresh database: 158 units (98 draft, 60 enacted), 165 versions', async () => {
    const name = uniqueDatabaseName('seed');
    created.push(name);
    const env = { DATABASE_URL: testDatabaseUrl(name), HOME: home };
    for (let round = 1; round <= 2; round += 1) {
      const migrated = await runCli(['db', 'migrate'], env);
      expect(migrated.code, migrated.stderr).toBe(0);
      const seeded = await runCli(['demo', 'seed'], env);
      expect(seeded.code, seeded.stderr).toBe(0);
      expect(seeded.stdout).toContain(round === 1 ? '158 unit(s) inserted' : '0 unit(s) inserted');
    }
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      const states = await client.query<{ corpus: string; state: string; n: number; min: number; max: number }>(
        `SELECT corpus, state, count(*)::int AS n, min(current_version) AS min, max(current_version) AS max
           FROM information_unit GROUP BY 1, 2 ORDER BY 1`,
      );
      // ICX-CONST was enacted, 7 units revised on the way, by the history's first run (docs/design.md §2).
      expect(states.rows).toEqual([
        { corpus: 'ICX-CONST', state: 'enacted', n: 60, min: 1, max: 2 },
        { corpus: 'ICX-WORK', state: 'draft', n: 98, min: 1, max: 1 },
      ]);
      const versions = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM unit_version');
      expect(versions.rows[0]?.n).toBe(165);
      const keys = await client.query<{ first: string; last: string }>(
        `SELECT min(key) AS first, max(key) AS last FROM information_unit WHERE corpus = 'ICX-WORK'`,
      );
      expect(keys.rows[0]).toEqual({ first: 'ICX-WORK/001', last: 'ICX-WORK/098' });
      const target = await client.query(`SELECT name, corpus, protected FROM cutter_governance.target_registry ORDER BY registered_utc`);
      expect(target.rows).toEqual([
        { name: 'icx-const-enactment', corpus: 'ICX-CONST', protected: false },
        { name: 'icx-const', corpus: 'ICX-CONST', protected: true },
      ]);
    } finally {
      await client.end();
    }
  });

  it('a usage error exits 2', async () => {
    const result = await runCli(['db', 'no-such-command']);
    expect(result.code).toBe(2);
  });
});
