import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupRunnerError } from '../../shared/backup/errors.js';
import { runSelftest, runSelftestAcrossRestart } from '../../shared/backup/selftest.js';
import { backupSpecFrom } from '../../shared/backup/spec.js';
import { createPool } from '../../shared/db/pool.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, testDatabaseUrl, uniqueDatabaseName, type TestDatabase } from '../support/db.js';
import { createTestKey, type TestKeyring } from '../support/gpg.js';
import { startPrivatePostgres } from '../support/pg-server.js';

let db: TestDatabase;
let key: TestKeyring;
const cleanups: (() => void)[] = [];

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cutter-${label}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function testKey(options: Parameters<typeof createTestKey>[0] = {}): TestKeyring {
  const made = createTestKey(options);
  cleanups.push(made.remove);
  return made;
}

beforeAll(async () => {
  db = await createTestDatabase('backup_selftest');
  key = testKey();
});

afterAll(async () => {
  await db.drop();
  for (const cleanup of cleanups.reverse()) cleanup();
});

/** The environment an operator would set, with any variable replaced. */
function envFor(overrides: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: db.url, BACKUP_GPG_FPR: key.fpr, BACKUP_DIR: tempDir('out'), GNUPGHOME: key.home, ...overrides };
}

/** The selftest line of one check, e.g. "FAIL  gpg  [GPG_MISSING] …". */
function line(stdout: string, check: string): string {
  const found = stdout.split('\n').find((l) => new RegExp(`^(PASS|FAIL|SKIP)\\s+${check}\\s`).test(l));
  if (!found) throw new Error(`no line for check "${check}" in:\n${stdout}`);
  return found;
}

/** A directory this process cannot create files in; root ignores mode bits, so root makes it immutable. */
function unwritableDir(): string {
  const dir = tempDir('ro');
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', dir]);
    cleanups.push(() => execFileSync('chattr', ['-i', dir]));
  } else {
    chmodSync(dir, 0o500);
    cleanups.push(() => chmodSync(dir, 0o700));
  }
  return dir;
}

/** A PATH holding pg_dump and pg_restore but no gpg. */
function pathWithoutGpg(): string {
  const dir = tempDir('path');
  for (const tool of ['pg_dump', 'pg_restore']) {
    const source = (process.env['PATH'] ?? '')
      .split(delimiter)
      .map((p) => join(p, tool))
      .find((candidate) => {
        try {
          accessSync(candidate, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
    if (!source) throw new Error(`${tool} is not on PATH`);
    symlinkSync(source, join(dir, tool));
  }
  return dir;
}

describe('cutter backup selftest', () => {
  it('passes every check with a usable key, pg_dump, the database and a writable directory, and writes nothing', async () => {
    const env = envFor();
    const result = await runCli(['backup', 'selftest'], env);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    for (const check of ['gpg', 'recipient key', 'pg_dump', 'pg_restore', 'database', 'table access', 'pg_dump version', 'output directory', 'free space']) {
      expect(line(result.stdout, check)).toMatch(/^PASS/);
    }
    expect(line(result.stdout, 'recipient key')).toContain(`encryption subkey ${key.encryptionSubkeyId ?? '?'}`);
    expect(result.stdout).toContain('backup selftest: PASS');
    expect(readdirSync(env['BACKUP_DIR'] ?? '')).toEqual([]);
  });

  it('fails GPG_MISSING when gpg is not on PATH, with the fix on the same line', async () => {
    const result = await runCli(['backup', 'selftest'], envFor({ PATH: pathWithoutGpg() }));
    expect(result.code).toBe(1);
    expect(line(result.stdout, 'gpg')).toMatch(/^FAIL\s+gpg\s+\[GPG_MISSING\] gpg is not on PATH .*— install GnuPG/);
    expect(line(result.stdout, 'recipient key')).toMatch(/\[GPG_MISSING\]/);
    // The other checks still ran and passed: the report names the one thing to fix.
    expect(line(result.stdout, 'pg_dump')).toMatch(/^PASS/);
    expect(line(result.stdout, 'database')).toMatch(/^PASS/);
    expect(result.stdout).toContain('backup selftest: FAIL (2 check(s))');
  });

  it('fails GPG_KEY_UNKNOWN for a fingerprint the keyring does not hold', async () => {
    const unknown = 'ABCDEF0123456789ABCDEF0123456789ABCDEF01';
    const result = await runCli(['backup', 'selftest'], envFor({ BACKUP_GPG_FPR: unknown }));
    expect(result.code).toBe(1);
    expect(line(result.stdout, 'recipient key')).toMatch(
      new RegExp(`^FAIL\\s+recipient key\\s+\\[GPG_KEY_UNKNOWN\\] no public key with fingerprint ${unknown} .*— import`),
    );
  });

  it('fails GPG_KEY_EXPIRED for an expired key', async () => {
    const expired = testKey({ expired: true });
    const result = await runCli(['backup', 'selftest'], envFor({ BACKUP_GPG_FPR: expired.fpr, GNUPGHOME: expired.home }));
    expect(result.code).toBe(1);
    expect(line(result.stdout, 'recipient key')).toMatch(/^FAIL\s+recipient key\s+\[GPG_KEY_EXPIRED\] key [0-9A-F]{40} expired on 2020-01-02 — extend/);
  });

  it('fails GPG_KEY_REVOKED for a revoked key and GPG_NO_ENCRYPTION_SUBKEY for a signing-only key', async () => {
    const revoked = testKey({ revoked: true });
    const r1 = await runCli(['backup', 'selftest'], envFor({ BACKUP_GPG_FPR: revoked.fpr, GNUPGHOME: revoked.home }));
    expect(r1.code).toBe(1);
    expect(line(r1.stdout, 'recipient key')).toMatch(/\[GPG_KEY_REVOKED\] key [0-9A-F]{40} is revoked/);

    const signOnly = testKey({ noEncryptionSubkey: true });
    const r2 = await runCli(['backup', 'selftest'], envFor({ BACKUP_GPG_FPR: signOnly.fpr, GNUPGHOME: signOnly.home }));
    expect(r2.code).toBe(1);
    expect(line(r2.stdout, 'recipient key')).toMatch(/\[GPG_NO_ENCRYPTION_SUBKEY\] key [0-9A-F]{40} has no encryption-capable subkey — add/);
  });

  it('fails BACKUP_DIR_UNWRITABLE for a directory it cannot write, and BACKUP_DIR_MISSING for none', async () => {
    const ro = unwritableDir();
    const r1 = await runCli(['backup', 'selftest'], envFor({ BACKUP_DIR: ro }));
    expect(r1.code).toBe(1);
    expect(line(r1.stdout, 'output directory')).toMatch(/^FAIL\s+output directory\s+\[BACKUP_DIR_UNWRITABLE\] cannot create a file in .* — give/);
    expect(readdirSync(ro)).toEqual([]);

    const missing = join(tempDir('gone'), 'not-there');
    const r2 = await runCli(['backup', 'selftest', '--out', missing], envFor());
    expect(r2.code).toBe(1);
    expect(line(r2.stdout, 'output directory')).toMatch(/\[BACKUP_DIR_MISSING\] .*not-there does not exist/);
  });

  it('fails DB_UNREACHABLE when the database does not answer', async () => {
    const result = await runCli(['backup', 'selftest'], envFor({ DATABASE_URL: testDatabaseUrl(uniqueDatabaseName('absent')) }));
    expect(result.code).toBe(1);
    expect(line(result.stdout, 'database')).toMatch(/^FAIL\s+database\s+\[DB_UNREACHABLE\] cannot connect to cutter_t_absent_/);
    expect(line(result.stdout, 'pg_dump version')).toMatch(/^FAIL/);
  });

  it("waits out a restart of the database (precheck's selftest): met down, it passes once the server is back", async () => {
    const server = await startPrivatePostgres();
    // The pool precheck runs on: it keeps listening for errors after pool.end(),
    // whose promise settles before the sockets close, so the server's stop
    // below can still send its 57P01 to a connection that is ending.
    const pool = createPool(server.url, { max: 1 });
    try {
      const spec = backupSpecFrom({ databaseUrl: server.url, recipientFpr: key.fpr, outDir: tempDir('restart'), gnupgHome: key.home });
      await server.stopFast();
      const down = await runSelftest(spec);
      expect(down.checks.filter((c) => !c.ok).map((c) => c.code)).toEqual(['DB_UNREACHABLE', 'DB_UNREACHABLE', 'DB_UNREACHABLE']);
      // The server comes back once the first selftest has failed and the wait for Postgres begins (its first query).
      let back: Promise<void> | undefined;
      const waiting = new Proxy(pool, {
        get(target, prop, receiver) {
          if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
          return (...args: unknown[]) => {
            back ??= server.start();
            return (target.query as (...a: unknown[]) => unknown)(...args);
          };
        },
      });
      const report = await runSelftestAcrossRestart(spec, waiting, 30_000);
      expect(back).toBeDefined();
      await back;
      expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    } finally {
      await pool.end();
      await server.cleanup();
    }
  }, 60_000);

  it('still fails a database URL that is simply wrong, after one more try, without waiting for it', async () => {
    const pool = createPool(db.url, { max: 1 });
    try {
      const spec = backupSpecFrom({ databaseUrl: testDatabaseUrl(uniqueDatabaseName('absent')), recipientFpr: key.fpr, outDir: tempDir('wrong'), gnupgHome: key.home });
      const report = await runSelftestAcrossRestart(spec, pool, 30_000);
      expect(report.ok).toBe(false);
      expect(report.checks.find((c) => c.name === 'database')?.code).toBe('DB_UNREACHABLE');
    } finally {
      await pool.end();
    }
  });

  it('--json gives the report the run phase reads: ok and checks with name, ok, code, message', async () => {
    const result = await runCli(['backup', 'selftest', '--json'], envFor({ BACKUP_GPG_FPR: 'ABCDEF0123456789ABCDEF0123456789ABCDEF01' }));
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: { name: string; ok: boolean; code?: string }[] };
    expect(report.ok).toBe(false);
    expect(report.checks.filter((c) => !c.ok).map((c) => [c.name, c.code])).toEqual([['recipient key', 'GPG_KEY_UNKNOWN']]);
  });

  it('refuses a spec without BACKUP_GPG_FPR in one line naming the variable', async () => {
    const env = envFor();
    delete env['BACKUP_GPG_FPR'];
    const result = await runCli(['backup', 'selftest'], env);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^cutter: BACKUP_GPG_FPR is not set — .* \[BACKUP_SPEC_INVALID\]$/)]);
  });
});

describe('the backup spec and selftest as the run calls them', () => {
  it('names the bad field', () => {
    const bad = (input: unknown) => {
      try {
        backupSpecFrom(input);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const err = bad({ databaseUrl: db.url, recipientFpr: 'nope', outDir: '/tmp', gnupgHome: undefined });
    expect(err).toBeInstanceOf(BackupRunnerError);
    expect((err as BackupRunnerError).code).toBe('BACKUP_SPEC_INVALID');
    expect((err as BackupRunnerError).field).toBe('recipientFpr');
    expect((err as Error).message).toMatch(/^recipientFpr must be a 40-hex-digit OpenPGP fingerprint/);
    expect((bad({ databaseUrl: 'mysql://x/y', recipientFpr: key.fpr, outDir: '/tmp' }) as BackupRunnerError).field).toBe('databaseUrl');
  });

  it('runSelftest reports a failed check without throwing', async () => {
    const report = await runSelftest(
      backupSpecFrom({ databaseUrl: db.url, recipientFpr: key.fpr.toLowerCase(), outDir: unwritableDir(), gnupgHome: key.home }),
    );
    expect(report.ok).toBe(false);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.code)).toEqual(['BACKUP_DIR_UNWRITABLE', 'BACKUP_DIR_UNWRITABLE']);
  });
});
