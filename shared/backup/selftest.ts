import { randomBytes } from 'node:crypto';
import { open, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type BackupErrorCode, withFix } from './errors.js';
import { gpgVersion } from './gpg.js';
import { connect, databaseName, pgToolVersion, serverMajor, serverOf, type ToolVersion } from './pgtools.js';
import { checkRecipient } from './recipient.js';
import { waitForPostgres, type Pool } from '../db/pool.js';
import type { BackupSpec } from './spec.js';

/** One line of the selftest: what was checked, whether it passed, and (when not) its code and fix. */
export interface SelftestCheck {
  name: string;
  ok: boolean;
  code?: string;
  message: string;
}

export interface SelftestReport {
  ok: boolean;
  checks: SelftestCheck[];
}

/** Space kept free beyond the estimate, so a backup never fills a volume to the last byte. */
const SPACE_MARGIN_BYTES = 64 * 1024 * 1024;

const pass = (name: string, message: string): SelftestCheck => ({ name, ok: true, message });
const fail = (name: string, code: BackupErrorCode, what: string): SelftestCheck => ({ name, ok: false, code, message: withFix(code, what) });

interface DatabaseFacts {
  major: number;
  version: string;
  /** Heap + TOAST bytes of every table pg_dump would read: an upper estimate of the compressed dump. */
  estimateBytes: number;
  unreadable: string[];
}

/**
 * Checks everything a backup needs, without writing a backup: gpg and the
 * recipient key, pg_dump and pg_restore and their versions, the database, the
 * output directory and its free space. Fails closed: a check that cannot be
 * made is a failed check. Never throws for a failed check.
 */
export async function runSelftest(spec: BackupSpec): Promise<SelftestReport> {
  // Independent checks, side by side (the key's is judged against gpg's presence below).
  const [gpg, key, pgDump, pgRestore, db, dir] = await Promise.all([
    gpgVersion(),
    checkRecipient(spec.gnupgHome, spec.recipientFpr),
    pgToolVersion('pg_dump'),
    pgToolVersion('pg_restore'),
    databaseFacts(spec.databaseUrl),
    directoryCheck(spec.outDir),
  ]);
  const checks: SelftestCheck[] = [];

  checks.push(gpg ? pass('gpg', `GnuPG ${gpg}`) : fail('gpg', 'GPG_MISSING', 'gpg is not on PATH (or does not run)'));
  if (!gpg) {
    checks.push(fail('recipient key', 'GPG_MISSING', `cannot check key ${spec.recipientFpr} without gpg`));
  } else {
    checks.push(key.ok ? pass('recipient key', key.message) : { name: 'recipient key', ok: false, code: key.code, message: key.message });
  }

  checks.push(toolCheck('pg_dump', pgDump), toolCheck('pg_restore', pgRestore));

  if (db.ok) {
    checks.push(pass('database', `${databaseName(spec.databaseUrl)} on ${serverOf(spec.databaseUrl)} answers (PostgreSQL ${db.facts.version})`));
    checks.push(
      db.facts.unreadable.length === 0
        ? pass('table access', 'every table is readable')
        : fail('table access', 'DB_READ_DENIED', `no SELECT on ${db.facts.unreadable.slice(0, 5).join(', ')}${db.facts.unreadable.length > 5 ? ' …' : ''}`),
    );
  } else {
    checks.push(fail('database', 'DB_UNREACHABLE', db.what));
  }

  if (!pgDump) checks.push(fail('pg_dump version', 'PG_DUMP_MISSING', 'cannot compare versions without pg_dump'));
  else if (!db.ok) checks.push(fail('pg_dump version', 'DB_UNREACHABLE', "cannot compare versions without the server's"));
  else if (pgDump.major < db.facts.major) {
    checks.push(fail('pg_dump version', 'PG_DUMP_TOO_OLD', `pg_dump ${pgDump.version} is older than the server (PostgreSQL ${db.facts.major})`));
  } else checks.push(pass('pg_dump version', `pg_dump ${pgDump.major} ≥ server ${db.facts.major}`));

  checks.push(dir.check);
  if (!dir.check.ok) checks.push(fail('free space', dir.code ?? 'BACKUP_DIR_MISSING', `cannot measure free space in ${spec.outDir}`));
  else if (!db.ok) checks.push(fail('free space', 'DB_UNREACHABLE', 'cannot estimate the dump without the database'));
  else {
    const needed = db.facts.estimateBytes + SPACE_MARGIN_BYTES;
    checks.push(
      dir.freeBytes >= needed
        ? pass('free space', `${mib(dir.freeBytes)} free, the dump needs at most about ${mib(db.facts.estimateBytes)}`)
        : fail('free space', 'BACKUP_DIR_FULL', `${mib(dir.freeBytes)} free in ${spec.outDir}, need about ${mib(needed)} (dump estimate + ${mib(SPACE_MARGIN_BYTES)} margin)`),
    );
  }
  return { ok: checks.every((c) => c.ok), checks };
}

/**
 * The selftest, run once more after PostgreSQL answers again when the
 * database alone failed it: a server restarting under a run's precheck is an
 * outage to wait out, as every phase's runner waits one out, not a setup to
 * fix. `pool` is the caller's own connection to the server (the phase was
 * just claimed through it); a backup URL that is simply wrong fails the
 * second selftest as it failed the first.
 */
export async function runSelftestAcrossRestart(spec: BackupSpec, pool: Pool, waitMs: number): Promise<SelftestReport> {
  const first = await runSelftest(spec);
  if (first.ok || first.checks.some((c) => !c.ok && c.code !== 'DB_UNREACHABLE')) return first;
  return (await waitForPostgres(pool, waitMs)) ? runSelftest(spec) : first;
}

function toolCheck(tool: 'pg_dump' | 'pg_restore', version: ToolVersion | undefined): SelftestCheck {
  return version ? pass(tool, `${tool} ${version.version}`) : fail(tool, 'PG_DUMP_MISSING', `${tool} is not on PATH (or does not run)`);
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

async function databaseFacts(url: string): Promise<{ ok: true; facts: DatabaseFacts } | { ok: false; what: string }> {
  let client;
  try {
    client = await connect(url, 'cutter-backup-selftest');
  } catch (err) {
    return { ok: false, what: `cannot connect to ${databaseName(url)} on ${serverOf(url)}: ${(err as Error).message}` };
  }
  try {
    const version = await client.query<{ num: string; version: string }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version`,
    );
    const tables = await client.query<{ bytes: string; unreadable: string[] }>(
      `SELECT coalesce(sum(pg_catalog.pg_table_size(c.oid)), 0)::text AS bytes,
              coalesce(array_agg(n.nspname || '.' || c.relname ORDER BY n.nspname, c.relname)
                         FILTER (WHERE NOT has_table_privilege(c.oid, 'SELECT')), '{}') AS unreadable
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND c.relpersistence <> 't'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`,
    );
    const row = version.rows[0];
    const size = tables.rows[0];
    if (!row || !size) return { ok: false, what: 'the server did not report its version' };
    return {
      ok: true,
      facts: { major: serverMajor(row.num), version: row.version, estimateBytes: Number(size.bytes), unreadable: size.unreadable },
    };
  } catch (err) {
    return { ok: false, what: `the server answered but a catalog query failed: ${(err as Error).message}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Proves the directory takes a new file by creating, syncing and removing one, as the backup will. */
async function directoryCheck(dir: string): Promise<{ check: SelftestCheck; code?: BackupErrorCode; freeBytes: number }> {
  const name = 'output directory';
  const failed = (code: BackupErrorCode, what: string) => ({ check: fail(name, code, what), code, freeBytes: 0 });
  try {
    if (!(await stat(dir)).isDirectory()) return failed('BACKUP_DIR_MISSING', `${dir} is not a directory`);
  } catch {
    return failed('BACKUP_DIR_MISSING', `${dir} does not exist`);
  }
  const probe = join(dir, `.cutter-selftest-${randomBytes(6).toString('hex')}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    try {
      await handle.writeFile('cutter backup selftest\n');
      await handle.sync();
    } finally {
      await handle.close();
      await unlink(probe).catch(() => undefined);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOSPC' || code === 'EDQUOT') return failed('BACKUP_DIR_FULL', `${dir} has no space left for even a small file`);
    return failed('BACKUP_DIR_UNWRITABLE', `cannot create a file in ${dir} (${code})`);
  }
  try {
    const fs = await statfs(dir);
    return { check: pass(name, `${dir} exists and is writable`), freeBytes: fs.bavail * fs.bsize };
  } catch (err) {
    return failed('BACKUP_DIR_UNWRITABLE', `cannot measure free space in ${dir}: ${(err as Error).message}`);
  }
}
