import { stat } from 'node:fs/promises';
import type { PoolClient } from '../db/pool.js';
import { BackupRunnerError } from './errors.js';
import { decryptInto } from './decrypt.js';
import { dropDatabaseAt, ensureDatabase, userObjectCount } from './database.js';
import { compareFingerprints, fingerprintDatabase, type FingerprintDiff, type DumpFingerprint } from './fingerprint.js';
import { hasSecretSubkey } from './gpg.js';
import { checkIntegrity } from './integrity.js';
import { readManifest, type BackupManifest } from './manifest.js';
import { connect, databaseName, libpqTarget, pgToolVersion, serverOf } from './pgtools.js';
import { restoreCorpusInPlace } from './restore-corpus.js';
import { holdsCutterSchema, settleRestore, type RestoreSettlement } from './settle.js';

export interface RestoreOptions {
  /** postgres://… of the database to restore into; created when it does not exist. */
  into: string;
  /**
   * Restore into a database that already holds objects: into one that holds
   * cutter's schema, the corpus tables only (restore-corpus.ts); into any
   * other, replacing the objects the backup contains.
   */
  force?: boolean | undefined;
  gnupgHome?: string | undefined;
}

export interface RestoreResult {
  database: string;
  /** The database did not exist and was created for the restore. */
  created: boolean;
  /** `corpus`: the corpus tables of a cutter database, in place; `database`: everything the backup holds. */
  scope: 'corpus' | 'database';
  /** Fingerprints of the restored tables. */
  tables: DumpFingerprint[];
  /** Tables of the manifest whose restored fingerprint differs (empty on a faithful restore; an in-place restore with any commits nothing). */
  mismatches: FingerprintDiff[];
  /** What the restore settled in cutter's governance tables (settle.ts); null when the database holds none. */
  settled: RestoreSettlement | null;
}

/**
 * Restores a backup after checking it: manifest, size and sha256 first (a
 * changed file is never fed to pg_restore), then:
 * - into a new or empty database (disaster recovery), or with --force into
 *   one that is not cutter's: decrypt straight into pg_restore in one
 *   transaction, compare every table with the manifest, then settle (no run
 *   in flight, no lock held, the kill switch off);
 * - with --force into a database that holds cutter's schema: the corpus
 *   tables only, governance and the audit chain kept (restore-corpus.ts).
 */
export async function restoreBackup(file: string, options: RestoreOptions): Promise<RestoreResult> {
  await stat(file).catch((err: unknown) => {
    throw new BackupRunnerError('BACKUP_FILE_MISSING', `no backup file ${file}`, { cause: err });
  });
  const manifest = await readManifest(file);
  for (const check of await checkIntegrity(file, manifest)) {
    if (!check.ok && check.code) throw new BackupRunnerError(check.code, check.what);
  }
  return restoreChecked(file, manifest, options);
}

/** The restore itself, for a file whose manifest, size and sha256 were already checked. */
export async function restoreChecked(file: string, manifest: BackupManifest, options: RestoreOptions): Promise<RestoreResult> {
  if (!(await hasSecretSubkey(options.gnupgHome, manifest.recipient_fpr, manifest.encryption_subkey_id))) {
    throw new BackupRunnerError(
      'GPG_SECRET_KEY_MISSING',
      `the secret key of subkey ${manifest.encryption_subkey_id} (${manifest.recipient_fpr}) is not in this keyring`,
    );
  }
  const pgRestore = await pgToolVersion('pg_restore');
  if (!pgRestore) throw new BackupRunnerError('PG_DUMP_MISSING', 'pg_restore is not on PATH (or does not run)');

  const created = await ensureDatabase(options.into);
  const name = databaseName(options.into);
  const client = await connect(options.into, 'cutter-restore').catch(async (err: unknown) => {
    if (created) await dropDatabaseAt(options.into).catch(() => undefined);
    throw new BackupRunnerError('DB_UNREACHABLE', `cannot connect to ${name} on ${serverOf(options.into)}: ${(err as Error).message}`, { cause: err });
  });
  try {
    const objects = created ? 0 : await userObjectCount(options.into);
    if (objects > 0 && !options.force) {
      throw new BackupRunnerError('RESTORE_TARGET_NOT_EMPTY', `database ${name} on ${serverOf(options.into)} already holds ${objects} object(s)`);
    }
    const restoreWhole = (url: string, clean = false) => pgRestoreWhole(file, options.gnupgHome, url, clean);
    if (objects > 0 && (await holdsCutterSchema(client))) {
      const corpus = await restoreCorpusInPlace({ file, manifest, target: client, targetUrl: options.into, restoreWhole });
      return { database: name, created, scope: 'corpus', tables: corpus.tables, mismatches: [], settled: corpus.settlement };
    }
    await restoreWhole(options.into, objects > 0);
    // Each table hashed the way the manifest's source was, before anything is settled on top.
    const tables = await fingerprintDatabase(client, new Map(manifest.tables.map((t) => [t.name, t.hash])));
    const restoredOnly = new Set(manifest.tables.map((t) => t.name));
    // After a forced restore other tables may remain; only the backup's tables are compared then.
    const compared = objects > 0 ? tables.filter((t) => restoredOnly.has(t.name)) : tables;
    const mismatches = compareFingerprints(manifest.tables, compared);
    // A database restored whole with nothing to settle stays exactly the backup's.
    const settled = (await holdsCutterSchema(client))
      ? await settleInOwnTransaction(client, {
          file,
          sha256: manifest.sha256,
          backupRunId: manifest.run_id,
          scope: 'database',
          tables: compared.map((t) => ({ name: t.name, rows: t.rows })),
        })
      : null;
    return { database: name, created, scope: 'database', tables, mismatches, settled };
  } catch (err) {
    // A database made for this restore that failed (empty, or restored but not settled) helps no one.
    if (created) {
      await client.end().catch(() => undefined);
      await dropDatabaseAt(options.into).catch(() => undefined);
    }
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** gpg --decrypt into pg_restore, in one transaction: a restore that fails leaves the database as it was. */
async function pgRestoreWhole(file: string, gnupgHome: string | undefined, url: string, clean: boolean): Promise<void> {
  const { dbname, env } = libpqTarget(url);
  const outcome = await decryptInto(file, gnupgHome, {
    command: 'pg_restore',
    args: ['--single-transaction', '--exit-on-error', '--no-password', ...(clean ? ['--clean', '--if-exists'] : []), '--dbname', dbname],
    env,
  });
  if (outcome.ok) return;
  if (outcome.part === 'gpg-missing') throw new BackupRunnerError('GPG_MISSING', 'gpg is not on PATH');
  if (outcome.part === 'consumer-missing') throw new BackupRunnerError('PG_DUMP_MISSING', 'pg_restore is not on PATH');
  if (outcome.part === 'gpg') throw new BackupRunnerError('GPG_FAILED', `decrypting ${file} failed: ${outcome.detail}`);
  throw new BackupRunnerError('RESTORE_FAILED', `restoring into ${databaseName(url)} failed: ${outcome.detail}`);
}

async function settleInOwnTransaction(client: Awaited<ReturnType<typeof connect>>, input: Parameters<typeof settleRestore>[1]): Promise<RestoreSettlement> {
  await client.query('BEGIN');
  try {
    // The run store's helpers take a pool client; they only query, which any client does.
    const settled = await settleRestore(client as unknown as PoolClient, input);
    await client.query(settled.audit_seq === null ? 'ROLLBACK' : 'COMMIT');
    return settled;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
