import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../shared/backup/create.js';
import { BackupRunnerError } from '../../shared/backup/errors.js';
import { backupSpecFrom, type BackupSpec } from '../../shared/backup/spec.js';
import { ident } from '../../shared/db/pool.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, seedDemoDatabase, testDatabaseUrl, uniqueDatabaseName, type TestDatabase } from '../support/db.js';
import { createTestKey, type TestKeyring } from '../support/gpg.js';
import { waitFor } from '../support/poll.js';

let db: TestDatabase;
let key: TestKeyring;
/** A login role that may connect but not read the corpus tables: pg_dump fails as it. */
const reader = `cutter_t_dumper_${randomBytes(4).toString('hex')}`;
const dirs: string[] = [];

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cutter-${label}-`));
  dirs.push(dir);
  return dir;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: testDatabaseUrl('postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Runs createBackup, watching the directory; returns the error and every name that appeared in it. */
async function failedBackup(spec: BackupSpec, options: Parameters<typeof createBackup>[1] = {}): Promise<{ err: BackupRunnerError; seen: string[] }> {
  const seen = new Set<string>();
  const watcher = watch(spec.outDir, (_event, name) => {
    if (name) seen.add(name);
  });
  try {
    await createBackup(spec, options);
  } catch (err) {
    if (err instanceof BackupRunnerError) return { err, seen: [...seen] };
    throw err;
  } finally {
    watcher.close();
  }
  throw new Error('the backup succeeded');
}

beforeAll(async () => {
  db = await createTestDatabase('backup_fail');
  await seedDemoDatabase(db.pool, 'tester');
  key = createTestKey();
  await admin(`CREATE ROLE ${ident(reader)} LOGIN`);
});

afterAll(async () => {
  await db.drop();
  await admin(`DROP ROLE IF EXISTS ${ident(reader)}`);
  key.remove();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('a backup that fails leaves nothing behind', () => {
  it('pg_dump failing after gpg has written its part: PG_DUMP_FAILED, and the partial file is gone', async () => {
    const outDir = tempDir('dumpfail');
    const url = new URL(db.url);
    url.username = reader;
    url.password = '';
    const spec = backupSpecFrom({ databaseUrl: url.toString(), recipientFpr: key.fpr, outDir, gnupgHome: key.home });
    const { err, seen } = await failedBackup(spec);
    expect(err.code).toBe('PG_DUMP_FAILED');
    expect(err.message).toMatch(/^pg_dump failed \(exit code 1\): .*permission denied/);
    // gpg alone would have exited 0 with a valid little file: it was written, then removed.
    expect(seen.some((n) => n.endsWith('.pgdump.gpg.partial'))).toBe(true);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('the same through the CLI: one error line, exit 1, an empty directory', async () => {
    const outDir = tempDir('dumpfail-cli');
    const url = new URL(db.url);
    url.username = reader;
    const result = await runCli(['backup', 'create', '--out', outDir], {
      DATABASE_URL: url.toString(),
      BACKUP_GPG_FPR: key.fpr,
      GNUPGHOME: key.home,
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(/^cutter: pg_dump failed .*permission denied.* — read pg_dump's error .*\[PG_DUMP_FAILED\]$/);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('a database that does not exist: DB_UNREACHABLE before anything is written', async () => {
    const outDir = tempDir('nodb');
    const spec = backupSpecFrom({
      databaseUrl: testDatabaseUrl(uniqueDatabaseName('absent')),
      recipientFpr: key.fpr,
      outDir,
      gnupgHome: key.home,
    });
    const { err, seen } = await failedBackup(spec);
    expect(err.code).toBe('DB_UNREACHABLE');
    expect(err.message).toMatch(/does not exist/);
    expect(seen).toEqual([]);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('an expired key: GPG_KEY_EXPIRED, and nothing is left', async () => {
    const expired = createTestKey({ expired: true });
    try {
      const outDir = tempDir('expired');
      const spec = backupSpecFrom({ databaseUrl: db.url, recipientFpr: expired.fpr, outDir, gnupgHome: expired.home });
      const { err } = await failedBackup(spec);
      expect(err.code).toBe('GPG_KEY_EXPIRED');
      expect(readdirSync(outDir)).toEqual([]);
    } finally {
      expired.remove();
    }
  });

  it('an aborted backup: BACKUP_ABORTED, both processes stopped, the partial file gone', async () => {
    const outDir = tempDir('aborted');
    const spec = backupSpecFrom({ databaseUrl: db.url, recipientFpr: key.fpr, outDir, gnupgHome: key.home });
    const controller = new AbortController();
    const { err, seen } = await failedBackup(spec, { signal: controller.signal, onProgress: () => controller.abort() });
    expect(err.code).toBe('BACKUP_ABORTED');
    expect(seen.some((n) => n.endsWith('.partial'))).toBe(true);
    expect(readdirSync(outDir)).toEqual([]);
    // pg_dump was stopped, so its session goes away (the server notices a moment later).
    await waitFor('pg_dump session to end', async () => {
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pg_dump'`,
      );
      return rows[0]?.n === 0 ? true : undefined;
    });
  });

  it('a password in DATABASE_URL never reaches the error', async () => {
    const outDir = tempDir('secret');
    const url = new URL(testDatabaseUrl(uniqueDatabaseName('absent')));
    url.password = 'hunter2-secret';
    const result = await runCli(['backup', 'create', '--out', outDir], {
      DATABASE_URL: url.toString(),
      BACKUP_GPG_FPR: key.fpr,
      GNUPGHOME: key.home,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\[DB_UNREACHABLE\]/);
    expect(result.stderr + result.stdout).not.toContain('hunter2-secret');
  });
});
