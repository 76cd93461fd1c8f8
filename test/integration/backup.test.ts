import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, truncateSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../shared/backup/create.js';
import { fingerprintDatabase } from '../../shared/backup/fingerprint.js';
import type { BackupManifest } from '../../shared/backup/manifest.js';
import { backupSpecFrom } from '../../shared/backup/spec.js';
import { verifyBackup } from '../../shared/backup/verify.js';
import { runCli, type CliResult } from '../support/cli.js';
import { createTestDatabase, dropDatabase, seedDemoDatabase, testDatabaseUrl, uniqueDatabaseName, type TestDatabase } from '../support/db.js';
import { createTestKey, type TestKeyring, type TestKeyringDir } from '../support/gpg.js';

let db: TestDatabase;
let key: TestKeyring;
let publicOnly: TestKeyringDir;
let outDir: string;
/** The backup every test below checks, taken once through the CLI. */
let backupFile: string;
let manifest: BackupManifest;
/** What `cutter backup create` answered. */
let created: CliResult;
const scratch: string[] = [];
const dirs: string[] = [];

/** Tables a user would compare after a restore, with a content hash computed independently of cutter's. */
const TABLES = [
  'public.information_unit',
  'public.unit_version',
  'public.iu_lifecycle_log',
  'public.backup_test_filler',
  'cutter_governance.target_registry',
  'cutter_governance.audit_event',
];

async function contentOf(url: string, tables: readonly string[] = TABLES): Promise<Record<string, { rows: number; md5: string }>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("SET TIME ZONE 'UTC'");
    const out: Record<string, { rows: number; md5: string }> = {};
    for (const table of tables) {
      // Table names are the constants above.
      const { rows } = await client.query<{ rows: number; md5: string }>(
        `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS md5 FROM ${table} t`,
      );
      out[table] = rows[0] ?? { rows: -1, md5: '' };
    }
    return out;
  } finally {
    await client.end();
  }
}

async function fingerprintsOf(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fingerprintDatabase(client);
  } finally {
    await client.end();
  }
}

function scratchUrl(label: string): string {
  const name = uniqueDatabaseName(label);
  scratch.push(name);
  return testDatabaseUrl(name);
}

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cutter-${label}-`));
  dirs.push(dir);
  return dir;
}

/** A copy of the backup and its manifest in a directory of its own, to damage. */
function copyOfBackup(label: string): string {
  const dir = tempDir(label);
  const copy = join(dir, basename(backupFile));
  copyFileSync(backupFile, copy);
  copyFileSync(`${backupFile}.manifest.json`, `${copy}.manifest.json`);
  return copy;
}

function firstBytes(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const read = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

const cliEnv = (overrides: Record<string, string> = {}) => ({
  DATABASE_URL: db.url,
  BACKUP_GPG_FPR: key.fpr,
  BACKUP_DIR: outDir,
  GNUPGHOME: key.home,
  ...overrides,
});

beforeAll(async () => {
  db = await createTestDatabase('backup');
  await seedDemoDatabase(db.pool, 'tester');
  // Enough rows that the dump takes many writes, with text, numbers, timestamps, NULLs, and
  // an enum and a json column (types whose rows are fingerprinted by their text form).
  await db.pool.query(`CREATE TYPE public.backup_test_kind AS ENUM ('alpha', 'beta', 'gamma')`);
  await db.pool.query(
    `CREATE TABLE public.backup_test_filler AS
       SELECT g AS id, md5(g::text) || repeat(' text ', g % 7) AS note, g * 1.5::float8 AS ratio,
              timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' AS at,
              CASE WHEN g % 5 = 0 THEN NULL ELSE g END AS maybe,
              (ARRAY['alpha', 'beta', 'gamma'])[1 + g % 3]::public.backup_test_kind AS kind,
              json_build_object('g', g, 'even', g % 2 = 0) AS doc
         FROM generate_series(1, 40000) g`,
  );
  key = createTestKey();
  publicOnly = key.publicOnly();
  outDir = tempDir('backups');

  created = await runCli(['backup', 'create', '--out', outDir], cliEnv());
  expect(created.code, created.stderr).toBe(0);
  expect(created.stderr).toMatch(/backup: \d+ bytes written, done/);
  backupFile = /^backup: +(\S+)$/m.exec(created.stdout)?.[1] ?? '';
  manifest = JSON.parse(readFileSync(`${backupFile}.manifest.json`, 'utf8')) as BackupManifest;
});

afterAll(async () => {
  await db.drop();
  for (const name of scratch) await dropDatabase(name);
  publicOnly.remove();
  key.remove();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('cutter backup create', () => {
  it('writes the encrypted file and its manifest, nothing else, owner-only', () => {
    expect(readdirSync(outDir).sort()).toEqual([basename(backupFile), `${basename(backupFile)}.manifest.json`]);
    expect(basename(backupFile)).toMatch(new RegExp(`^cutter-${db.name}-\\d{8}T\\d{6}Z-[0-9a-f]{6}\\.pgdump\\.gpg$`));
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
  });

  it('records what a user checks: database, versions, recipient, subkey, size, sha256, tables with exact rows', () => {
    const bytes = readFileSync(backupFile);
    expect(manifest).toMatchObject({
      run_id: null,
      file: basename(backupFile),
      database: db.name,
      server: '127.0.0.1:5432',
      recipient_fpr: key.fpr,
      encryption_subkey_id: key.encryptionSubkeyId,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      dump_format: 'custom',
    });
    expect(manifest.server_version).toMatch(/^\d+/);
    // The version of the pg_dump that ran, as `pg_dump --version` on PATH tells it.
    const onPath = /\(PostgreSQL\)\s+(\S+)/.exec(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' }))?.[1];
    expect(manifest.pg_dump_version).toMatch(/^\d+\.\d+/);
    expect(manifest.pg_dump_version).toBe(onPath);
    expect(Date.parse(manifest.finished_utc)).toBeGreaterThanOrEqual(Date.parse(manifest.started_utc));
    const rows = Object.fromEntries(manifest.tables.map((t) => [t.name, t.rows]));
    expect(rows).toMatchObject({ 'public.information_unit': 158, 'public.unit_version': 165, 'public.backup_test_filler': 40000 });
    // Rows with an enum or json column are hashed by their text (an enum's own hash depends on OIDs a restore changes).
    const hashes = Object.fromEntries(manifest.tables.map((t) => [t.name, t.hash]));
    expect(hashes).toMatchObject({ 'public.backup_test_filler': 'text', 'public.unit_version': 'record' });
    // No password, ever: the manifest names the database, not the URL.
    expect(JSON.stringify(manifest)).not.toContain('postgres://');
  });

  it('records the audit chain head the dump holds, and prints it', async () => {
    const { rows } = await db.pool.query<{ head: string }>(`SELECT seq || ':' || hash AS head FROM cutter_governance.audit_event ORDER BY seq DESC LIMIT 1`);
    expect(rows[0]?.head).toMatch(/^\d+:[0-9a-f]{64}$/);
    expect(manifest.audit_head).toBe(rows[0]?.head);
    expect(created.stdout).toContain(`audit:    chain head ${manifest.audit_head ?? '?'} (cutter audit verify --head ${manifest.audit_head ?? '?'})\n`);
  });

  it('the dump inside is pg_dump custom format at zlib level 1, as the manifest says', () => {
    // pg_restore --list stops after the table of contents, so it reads a file, not a pipe it would leave half read.
    const plain = join(mkdtempSync(join(tmpdir(), 'cutter-plain-')), 'dump');
    dirs.push(dirname(plain));
    execFileSync('gpg', ['--batch', '--no-tty', '--homedir', key.home, '--output', plain, '--decrypt', backupFile], { stdio: 'ignore' });
    const toc = execFileSync('pg_restore', ['--list', plain], { encoding: 'utf8' });
    expect(toc).toMatch(/^;\s+Format: CUSTOM$/m);
    // pg_restore 15 and older print the zlib level here; 16 and newer print the method (gzip), not the level.
    const restoreMajor = Number(/\(PostgreSQL\)\s+(\d+)/.exec(execFileSync('pg_restore', ['--version'], { encoding: 'utf8' }))?.[1]);
    expect(/^;\s+Compression: (\S+)$/m.exec(toc)?.[1]).toBe(restoreMajor >= 16 ? 'gzip' : '1');
    expect(manifest.compression).toBe('pg_dump zlib level 1; gpg none');
  });

  it('the file is OpenPGP ciphertext for the recipient, not a dump: it starts with a session key packet, never PGDMP', () => {
    const head = firstBytes(backupFile, 8);
    expect(head.subarray(0, 5).toString('latin1')).not.toBe('PGDMP');
    // Packet tag 1 (public-key encrypted session key), old or new header format.
    const tag = (head[0] ?? 0) & 0x40 ? (head[0] ?? 0) & 0x3f : ((head[0] ?? 0) >> 2) & 0x0f;
    expect(tag).toBe(1);
    expect(readFileSync(backupFile).includes(Buffer.from('ICX-CONST/001'))).toBe(false);
  });
});

describe('cutter backup verify', () => {
  it('passes size, sha256, recipient and a full read with the secret key', async () => {
    const result = await runCli(['backup', 'verify', backupFile], cliEnv());
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toMatch(/^PASS\s+size\s/m);
    expect(result.stdout).toMatch(/^PASS\s+sha256\s/m);
    expect(result.stdout).toMatch(new RegExp(`^PASS\\s+recipient\\s+encrypted to subkey ${key.encryptionSubkeyId ?? '?'} of ${key.fpr}`, 'm'));
    expect(result.stdout).toMatch(/^PASS\s+full read\s+decrypted and read to the end by pg_restore/m);
  });

  it('without the secret key still checks size, sha256 and the recipient, and says the full read was skipped', async () => {
    const result = await runCli(['backup', 'verify', backupFile], cliEnv({ GNUPGHOME: publicOnly.home }));
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toMatch(/^PASS\s+recipient\s/m);
    expect(result.stdout).toMatch(/^SKIP\s+full read\s+skipped: the secret key of subkey/m);
  });

  it('fails a file with one flipped byte (sha256, and gpg refuses to decrypt it)', async () => {
    const copy = copyOfBackup('flipped');
    const bytes = readFileSync(copy);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(copy, bytes);
    const result = await runCli(['backup', 'verify', copy], cliEnv());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^PASS\s+size\s/m);
    expect(result.stdout).toMatch(/^FAIL\s+sha256\s+\[BACKUP_VERIFY_SHA256\] .* — the file changed after it was written/m);
    expect(result.stdout).toMatch(/^FAIL\s+full read\s+\[BACKUP_VERIFY_READ\]/m);
    expect(result.stdout).toContain('backup verify: FAIL');
    // Without the private key the sha256 alone catches it.
    const pub = await verifyBackup(copy, { gnupgHome: publicOnly.home });
    expect(pub.ok).toBe(false);
    expect(pub.checks.filter((c) => !c.ok).map((c) => c.code)).toEqual(['BACKUP_VERIFY_SHA256']);
  });

  it('fails a truncated file (size, sha256 and the full read)', async () => {
    const copy = copyOfBackup('truncated');
    truncateSync(copy, Math.floor(statSync(copy).size * 0.6));
    const result = await runCli(['backup', 'verify', copy], cliEnv());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL\s+size\s+\[BACKUP_VERIFY_SIZE\] the file has \d+ bytes, the manifest says \d+/m);
    expect(result.stdout).toMatch(/^FAIL\s+sha256\s+\[BACKUP_VERIFY_SHA256\]/m);
    expect(result.stdout).toMatch(/^FAIL\s+full read\s+\[BACKUP_VERIFY_READ\]/m);
  });

  it('fails a file whose manifest is gone', async () => {
    const copy = copyOfBackup('nomanifest');
    rmSync(`${copy}.manifest.json`);
    const report = await verifyBackup(copy, { gnupgHome: key.home });
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => c.code)).toEqual(['BACKUP_MANIFEST_MISSING']);
  });

  it('--drill restores into a scratch database, finds every table fingerprint equal, and drops it', async () => {
    const drillUrl = scratchUrl('drill');
    const result = await runCli(['backup', 'verify', backupFile, '--drill', drillUrl], cliEnv());
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^PASS\\s+drill\\s+restored into cutter_t_drill_\\w+: ${manifest.tables.length} table\\(s\\), every fingerprint equals the manifest's`, 'm'));
    const client = new pg.Client({ connectionString: testDatabaseUrl('postgres') });
    await client.connect();
    const left = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [new URL(drillUrl).pathname.slice(1)]);
    await client.end();
    expect(left.rowCount).toBe(0);
  });
});

describe('cutter backup restore', () => {
  it('restores into a new database with every table equal to the source', async () => {
    const target = scratchUrl('restored');
    const result = await runCli(['backup', 'restore', backupFile, '--into', target], cliEnv());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("fingerprints: every restored table equals the manifest's");
    // Checked independently of cutter's fingerprints: counts and an ordered content hash per table.
    expect(await contentOf(target)).toEqual(await contentOf(db.url));
    expect(await fingerprintsOf(target)).toEqual(manifest.tables);
    expect(await fingerprintsOf(db.url)).toEqual(manifest.tables);
  });

  it('refuses a database that is not empty; with --force into a cutter database it replaces the corpus tables only', async () => {
    const busy = await createTestDatabase('restore_busy');
    scratch.push(busy.name);
    try {
      await busy.pool.query(`INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ('OTHER', 'OTHER/1', 'draft', 1)`);
      const refused = await runCli(['backup', 'restore', backupFile, '--into', busy.url], cliEnv());
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toMatch(/^cutter: database cutter_t_restore_busy_\w+ on 127\.0\.0\.1:5432 already holds \d+ object\(s\) — .*--force .*\[RESTORE_TARGET_NOT_EMPTY\]$/);
      const untouched = await busy.pool.query<{ key: string }>('SELECT key FROM public.information_unit');
      expect(untouched.rows).toEqual([{ key: 'OTHER/1' }]);
      // The busy database is cutter's without the source's filler table.
      const cutterTables = TABLES.filter((t) => t !== 'public.backup_test_filler');
      const governance = await contentOf(busy.url, cutterTables);

      const forced = await runCli(['backup', 'restore', backupFile, '--into', busy.url, '--force'], cliEnv());
      expect(forced.code, forced.stderr).toBe(0);
      const restored = await contentOf(busy.url, cutterTables);
      const source = await contentOf(db.url, cutterTables);
      for (const table of ['public.information_unit', 'public.unit_version', 'public.iu_lifecycle_log']) expect(restored[table]).toEqual(source[table]);
      // The governance tables stay the database's own, and the restore records itself there.
      const { 'cutter_governance.audit_event': auditAfter, ...governanceAfter } = restored;
      const { 'cutter_governance.audit_event': auditBefore, ...governanceBefore } = governance;
      for (const table of Object.keys(governanceBefore).filter((t) => t.startsWith('cutter_governance.'))) {
        expect(governanceAfter[table], table).toEqual(governanceBefore[table]);
      }
      expect(auditAfter?.rows).toBe((auditBefore?.rows ?? 0) + 1);
      const last = await busy.pool.query<{ kind: string }>('SELECT kind FROM cutter_governance.audit_event ORDER BY seq DESC LIMIT 1');
      expect(last.rows).toEqual([{ kind: 'backup.restored' }]);
    } finally {
      await busy.pool.end().catch(() => undefined);
    }
  });

  it('refuses a changed file before touching any database', async () => {
    const copy = copyOfBackup('tampered');
    const bytes = readFileSync(copy);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0x80;
    writeFileSync(copy, bytes);
    const target = scratchUrl('never');
    const result = await runCli(['backup', 'restore', copy, '--into', target], cliEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\[BACKUP_VERIFY_SHA256\]/);
    const client = new pg.Client({ connectionString: testDatabaseUrl('postgres') });
    await client.connect();
    const made = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [new URL(target).pathname.slice(1)]);
    await client.end();
    expect(made.rowCount).toBe(0);
  });
});

describe('no plaintext on disk', () => {
  it('while a backup is written, no file in the directory ever starts with the pg_dump magic', async () => {
    const dir = tempDir('watched');
    const seen = new Set<string>();
    const plaintext: string[] = [];
    let looks = 0;
    const look = (name: string | null) => {
      if (!name) return;
      seen.add(name);
      looks += 1;
      try {
        if (firstBytes(join(dir, name), 5).toString('latin1') === 'PGDMP') plaintext.push(name);
      } catch {
        // renamed or removed between the event and the read
      }
    };
    const watcher = watch(dir, (_event, name) => look(name));
    let progressCalls = 0;
    try {
      const spec = backupSpecFrom({ databaseUrl: db.url, recipientFpr: key.fpr, outDir: dir, gnupgHome: key.home });
      const result = await createBackup(spec, {
        runId: 'run-watch',
        onProgress: () => {
          progressCalls += 1;
          for (const name of readdirSync(dir)) look(name);
        },
      });
      for (const name of readdirSync(dir)) look(name);
      expect(result.manifest.run_id).toBe('run-watch');
      expect(basename(result.file)).toMatch(/-run-watch\.pgdump\.gpg$/);
    } finally {
      watcher.close();
    }
    // The temporary file was seen while it grew, and not one look found plaintext.
    expect([...seen].some((n) => n.endsWith('.partial'))).toBe(true);
    expect(looks).toBeGreaterThan(2);
    expect(progressCalls).toBeGreaterThan(0);
    expect(plaintext).toEqual([]);
    for (const name of readdirSync(dir)) expect(firstBytes(join(dir, name), 5).toString('latin1')).not.toBe('PGDMP');
  });
});
