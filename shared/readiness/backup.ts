import { constants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { gpgVersion } from '../backup/gpg.js';
import { pgToolVersion, serverMajor } from '../backup/pgtools.js';
import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import { checkRecipientNoWrite } from './backup-key.js';
import { readOnly } from './read-only.js';
import { blocker, messageOf, type BlockerDraft, type PackageResult } from './types.js';

/**
 * The backup runner (and C7), checked the way `cutter backup selftest`
 * checks it, minus its two writes: the selftest proves the directory by
 * creating a probe file, and lets gpg refresh its seed file. Here the
 * directory is judged by access(2) and statfs(2), and gpg runs with its
 * no-write flags (backup-key.ts). A real backup is not taken: that is the
 * one thing this check cannot do without writing.
 */

export const BACKUP_RUNNER = 'backup runner';

/** Space kept free beyond the estimate, as the runner's selftest keeps it. */
const SPACE_MARGIN_BYTES = 64 * 1024 * 1024;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The GNUPGHOME gpg will use: the configured one, else gpg's own default. */
export function effectiveGnupgHome(cfg: Config): string {
  return resolve(cfg.GNUPGHOME ?? join(homedir(), '.gnupg'));
}

interface ServerFacts {
  major: number;
  version: string;
  user: string;
  estimateBytes: number;
  unreadable: string[];
}

async function serverFacts(pool: Pool): Promise<ServerFacts> {
  return readOnly(pool, async (client) => {
    const { rows } = await client.query<{ num: string; version: string; who: string; bytes: string; unreadable: string[] }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version, current_user::text AS who,
              (SELECT coalesce(sum(pg_catalog.pg_table_size(c.oid)), 0)::text
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND c.relpersistence <> 't'
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%') AS bytes,
              (SELECT coalesce(array_agg(n.nspname || '.' || c.relname ORDER BY n.nspname, c.relname), '{}')
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND NOT has_table_privilege(c.oid, 'SELECT')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%') AS unreadable`,
    );
    const r = rows[0];
    if (!r) throw new Error('the server did not report its version');
    return { major: serverMajor(r.num), version: r.version, user: r.who, estimateBytes: Number(r.bytes), unreadable: r.unreadable };
  });
}

/** Directory, writability (by permission, not by a probe file) and free space. */
async function directoryChecks(dir: string, estimateBytes: number, checks: string[], blockers: BlockerDraft[]): Promise<void> {
  const osUser = userInfo().username;
  const isDir = await stat(dir).then((s) => s.isDirectory()).catch(() => false);
  if (!isDir) {
    checks.push(`BACKUP_DIR ${dir}: not an existing directory`);
    blockers.push(blocker('operator', `the backup directory ${dir} created (mkdir -p) and writable by ${osUser}`, `BACKUP_DIR names ${dir}, which is not an existing directory`));
    return;
  }
  const writable = await access(dir, constants.W_OK | constants.X_OK).then(() => true, () => false);
  if (!writable) {
    checks.push(`BACKUP_DIR ${dir}: not writable by ${osUser}`);
    blockers.push(blocker('operator', `write permission on ${dir} for ${osUser}, or BACKUP_DIR pointing at a directory ${osUser} can write`, `access(2) says ${osUser} cannot create files in ${dir}`));
    return;
  }
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const needed = estimateBytes + SPACE_MARGIN_BYTES;
  checks.push(`BACKUP_DIR ${dir}: writable by ${osUser} (access(2), no file created), ${mib(free)} free, the dump needs at most about ${mib(estimateBytes)} + ${mib(SPACE_MARGIN_BYTES)} margin`);
  if (free < needed) {
    blockers.push(blocker('operator', `${mib(needed)} free in ${dir} (or BACKUP_DIR on a larger volume)`, `only ${mib(free)} is free in ${dir}`));
  }
}

/** The backup runner's selftest, read-only; its result is also C7. */
export async function checkBackupRunner(cfg: Config, pool: Pool): Promise<PackageResult> {
  const checks: string[] = [];
  const blockers: BlockerDraft[] = [];
  const home = effectiveGnupgHome(cfg);
  const fpr = cfg.BACKUP_GPG_FPR;

  const [gpg, pgDump, pgRestore] = await Promise.all([gpgVersion(), pgToolVersion('pg_dump'), pgToolVersion('pg_restore')]);
  if (!gpg) {
    checks.push('gpg: not on PATH');
    blockers.push(blocker('operator', 'GnuPG 2.2 or newer installed and on PATH', 'gpg is not on PATH (or does not run)'));
  } else checks.push(`gpg: GnuPG ${gpg}`);

  if (!fpr) {
    checks.push('recipient key: BACKUP_GPG_FPR is not set');
    blockers.push(blocker('operator', `BACKUP_GPG_FPR set to the fingerprint of the backup recipient's GPG key, with that key in GNUPGHOME (${home})`, 'BACKUP_GPG_FPR is not set, so a backup has no one to be encrypted for'));
  } else if (gpg) {
    const key = await checkRecipientNoWrite(home, fpr);
    if (key.ok) checks.push(`recipient key: ${key.message}; trial encryption of ${key.trialBytes ?? 0} bytes in memory succeeded (output discarded)`);
    else {
      checks.push(`recipient key: ${key.what}`);
      const form = key.code === 'GPG_KEY_UNKNOWN' ? `a GPG key with fingerprint ${fpr} in GNUPGHOME (${home})` : `a usable GPG key with fingerprint ${fpr} in GNUPGHOME (${home})`;
      blockers.push(blocker('operator', form, key.message));
    }
  }

  let facts: ServerFacts | undefined;
  try {
    facts = await serverFacts(pool);
  } catch (err) {
    return { name: BACKUP_RUNNER, runnable: 'NO', verified: 'not checked: the database did not answer', checks, blockers, failure: `backup runner: ${messageOf(err)}` };
  }
  for (const [tool, version] of [['pg_dump', pgDump], ['pg_restore', pgRestore]] as const) {
    if (!version) {
      checks.push(`${tool}: not on PATH`);
      blockers.push(blocker('operator', `${tool} of PostgreSQL ${facts.major} or newer on PATH`, `${tool} is not on PATH (or does not run)`));
    } else if (tool === 'pg_dump' && version.major < facts.major) {
      checks.push(`pg_dump: ${version.version}, older than the server (PostgreSQL ${facts.version})`);
      blockers.push(blocker('operator', `pg_dump of PostgreSQL ${facts.major} or newer first on PATH`, `pg_dump ${version.version} cannot dump a PostgreSQL ${facts.major} server`));
    } else checks.push(`${tool}: ${version.version}${tool === 'pg_dump' ? ` (≥ server ${facts.major})` : ''}`);
  }
  if (facts.unreadable.length === 0) checks.push(`table access: ${facts.user} can read every table pg_dump reads`);
  else {
    checks.push(`table access: ${facts.user} cannot read ${facts.unreadable.join(', ')}`);
    blockers.push(blocker('workflow_admin', `SELECT on ${facts.unreadable.join(', ')} granted to ${facts.user}`, `pg_dump as ${facts.user} would fail on tables it cannot read`));
  }

  if (!cfg.BACKUP_DIR) {
    checks.push('BACKUP_DIR: not set');
    blockers.push(blocker('operator', `BACKUP_DIR set to an existing directory writable by ${userInfo().username}, with about ${mib(facts.estimateBytes + SPACE_MARGIN_BYTES)} free`, 'BACKUP_DIR is not set, so a backup has nowhere to go'));
  } else await directoryChecks(resolve(cfg.BACKUP_DIR), facts.estimateBytes, checks, blockers);

  const ok = blockers.length === 0;
  return {
    name: BACKUP_RUNNER,
    runnable: ok ? 'YES' : 'NO',
    verified: ok
      ? 'selftest without writing: gpg, the recipient key (with a trial encryption in memory), pg_dump/pg_restore against the server version, table access, the backup directory and its free space all hold; no backup was taken'
      : `selftest without writing: ${blockers.length} problem(s) found (see the checks); no backup was taken`,
    checks,
    blockers,
    failure: null,
  };
}
