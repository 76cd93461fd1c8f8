import { stat } from 'node:fs/promises';
import { BackupRunnerError } from './errors.js';
import { decryptInto } from './decrypt.js';
import { dropDatabaseAt, ensureDatabase, userObjectCount } from './database.js';
import { compareFingerprints, fingerprintDatabase, type FingerprintDiff, type DumpFingerprint } from './fingerprint.js';
import { hasSecretSubkey } from './gpg.js';
import { checkIntegrity } from './integrity.js';
import { readManifest, type BackupManifest } from './manifest.js';
import { connect, databaseName, libpqTarget, pgToolVersion, serverOf } from './pgtools.js';

export interface RestoreOptions {
  /** postgres://… of the database to restore into; created when it does not exist. */
  into: string;
  /** Restore into a database that already holds objects, replacing those the backup contains. */
  force?: boolean | undefined;
  gnupgHome?: string | undefined;
}

export interface RestoreResult {
  database: string;
  /** The database did not exist and was created for the restore. */
  created: boolean;
  /** Fingerprints of the restored tables. */
  tables: DumpFingerprint[];
  /** Tables of the manifest whose restored fingerprint differs (empty on a faithful restore). */
  mismatches: FingerprintDiff[];
}

/**
 * Restores a backup after checking it: manifest, size and sha256 first (a
 * changed file is never fed to pg_restore), then decrypt straight into
 * pg_restore in one transaction, then the restored tables' fingerprints
 * against the manifest's.
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
  try {
    if (!created && !options.force) {
      const objects = await userObjectCount(options.into);
      if (objects > 0) {
        throw new BackupRunnerError('RESTORE_TARGET_NOT_EMPTY', `database ${name} on ${serverOf(options.into)} already holds ${objects} object(s)`);
      }
    }
    const { dbname, env } = libpqTarget(options.into);
    const outcome = await decryptInto(file, options.gnupgHome, {
      command: 'pg_restore',
      args: [
        // One transaction: a restore that fails leaves the database as it was.
        '--single-transaction', '--exit-on-error', '--no-password',
        ...(options.force && !created ? ['--clean', '--if-exists'] : []),
        '--dbname', dbname,
      ],
      env,
    });
    if (!outcome.ok) {
      if (outcome.part === 'gpg-missing') throw new BackupRunnerError('GPG_MISSING', 'gpg is not on PATH');
      if (outcome.part === 'consumer-missing') throw new BackupRunnerError('PG_DUMP_MISSING', 'pg_restore is not on PATH');
      if (outcome.part === 'gpg') throw new BackupRunnerError('GPG_FAILED', `decrypting ${file} failed: ${outcome.detail}`);
      throw new BackupRunnerError('RESTORE_FAILED', `restoring into ${name} failed: ${outcome.detail}`);
    }
    const client = await connect(options.into, 'cutter-restore');
    let tables: DumpFingerprint[];
    try {
      // Each table hashed the way the manifest's source was.
      tables = await fingerprintDatabase(client, new Map(manifest.tables.map((t) => [t.name, t.hash])));
    } finally {
      await client.end().catch(() => undefined);
    }
    const restoredOnly = new Set(manifest.tables.map((t) => t.name));
    // After a forced restore other tables may remain; only the backup's tables are compared then.
    const compared = options.force && !created ? tables.filter((t) => restoredOnly.has(t.name)) : tables;
    return { database: name, created, tables, mismatches: compareFingerprints(manifest.tables, compared) };
  } catch (err) {
    // A database made for this restore and left empty by its failure helps no one.
    if (created) await dropDatabaseAt(options.into).catch(() => undefined);
    throw err;
  }
}
