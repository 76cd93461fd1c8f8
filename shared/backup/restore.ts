import { stat } from 'node:fs/promises';
import type pg from 'pg';
import { migrate } from '../deploy/migrate.js';
import { HOLD_SCHEMA, type RestoreHold } from '../db/restore-hold.js';
import { chainDivergence, readBackupChain } from './chain-prefix.js';
import { BackupRunnerError } from './errors.js';
import { decryptInto } from './decrypt.js';
import { dropDatabaseAt, ensureDatabase, userObjectCount } from './database.js';
import { compareFingerprints, fingerprintDatabase, type FingerprintDiff, type DumpFingerprint } from './fingerprint.js';
import { hasSecretSubkey } from './gpg.js';
import { dropHold, isGoverned, takeHold } from './hold.js';
import { checkIntegrity } from './integrity.js';
import { readManifest, type BackupManifest } from './manifest.js';
import { connect, databaseName, libpqTarget, pgToolVersion, serverOf } from './pgtools.js';
import { reassertAfterRestore, type ReassertSummary } from './reassert.js';

export interface RestoreOptions {
  /** postgres://… of the database to restore into; created when it does not exist. */
  into: string;
  /** Restore into a database that already holds objects, replacing those the backup contains. */
  force?: boolean | undefined;
  gnupgHome?: string | undefined;
  /**
   * The deployment's exec role (CUTTER_EXEC_ROLE). An in-place restore ends
   * with the whole of `cutter db migrate`: a backup brings back its own
   * functions and grants, and an older one would give the exec role back
   * privileges it no longer holds.
   */
  execRole?: string | undefined;
  /** Runs after pg_restore committed, before the re-assert (the crash tests' moment). */
  afterPgRestore?: () => Promise<void>;
}

export interface RestoreResult {
  database: string;
  /** The database did not exist and was created for the restore. */
  created: boolean;
  /** Fingerprints of the restored tables. */
  tables: DumpFingerprint[];
  /** Tables of the manifest whose restored fingerprint differs (empty on a faithful restore). */
  mismatches: FingerprintDiff[];
  /** What was re-asserted on top of the restored tables (reassert.ts); null when it holds no governance schema. */
  reasserted: ReassertSummary | null;
}

/**
 * Restores a backup after checking it: manifest, size and sha256 first (a
 * changed file is never fed to pg_restore), then decrypt straight into
 * pg_restore in one transaction, then the restored tables' fingerprints
 * against the manifest's, then the re-assert (reassert.ts): nothing restored
 * is left in flight or armed.
 *
 * In place (a database that holds cutter_governance), before pg_restore: the
 * backup's audit chain is read from the file (one more decrypt, of the whole
 * file at worst) and must not contradict the database's, and the ledger and
 * chain are held aside (hold.ts). What a running fleet writes between the
 * hold and pg_restore's commit is not held, and between that commit and the
 * re-assert's the restored state stands as the backup had it: both are
 * moments, but an in-place restore is best made with the workers stopped.
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
  let holdTaken = false;
  let restored = false;
  try {
    if (!created && !options.force) {
      const objects = await userObjectCount(options.into);
      if (objects > 0) {
        throw new BackupRunnerError('RESTORE_TARGET_NOT_EMPTY', `database ${name} on ${serverOf(options.into)} already holds ${objects} object(s)`);
      }
    }
    // In place: what the database knows about applied plans and its audit trail is held aside first (hold.ts).
    const inPlace = !created && (await isGoverned(client));
    let hold: { created: boolean; hold: RestoreHold } | undefined;
    if (inPlace) {
      await requireReplicaRole(client, name);
      const backupChain = await readBackupChain(file, options.gnupgHome);
      hold = await takeHold(client, { file, sha256: manifest.sha256 });
      holdTaken = hold.created;
      const divergence = await chainDivergence(client, backupChain, 'held');
      if (divergence) {
        throw new BackupRunnerError(
          'RESTORE_CHAIN_DIVERGED',
          `the audit chain in ${file} is not an earlier (or later) state of the one in ${name}: ${divergence.reason}; nothing was restored`,
        );
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
    restored = true;
    // Each table hashed the way the manifest's source was, before anything is re-asserted on top.
    const tables = await fingerprintDatabase(client, new Map(manifest.tables.map((t) => [t.name, t.hash])));
    const restoredOnly = new Set(manifest.tables.map((t) => t.name));
    // After a forced restore other tables may remain; only the backup's tables are compared then.
    const compared = options.force && !created ? tables.filter((t) => restoredOnly.has(t.name)) : tables;
    const mismatches = compareFingerprints(manifest.tables, compared);
    await options.afterPgRestore?.();
    const migrationsApplied = inPlace ? (await migrate(options.into, { execRole: execRoleFor(options) })).applied : [];
    const reasserted = await reassertAfterRestore(client, {
      file,
      sha256: manifest.sha256,
      held: inPlace,
      resumedHold: hold !== undefined && !hold.created,
      migrationsApplied,
    });
    if (reasserted?.audit.diverged_at != null) {
      throw new BackupRunnerError(
        'RESTORE_CHAIN_DIVERGED',
        `restored into ${name}, but its audit chain and the one held before the restore differ at row ${reasserted.audit.diverged_at}: ` +
          `runs were ended and the kill switch turned off, the rows after the backup's end stay in schema ${HOLD_SCHEMA}`,
      );
    }
    return { database: name, created, tables, mismatches, reasserted };
  } catch (err) {
    // Nothing was restored: a hold this call took guards nothing. One left by an earlier restore stays.
    if (holdTaken && !restored) await dropHold(client).catch(() => undefined);
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

/**
 * The re-assert runs SET LOCAL session_replication_role (to put audit rows
 * back as they were), which takes a superuser or the SET privilege on it:
 * checked before anything is held or restored.
 */
async function requireReplicaRole(client: pg.ClientBase, name: string): Promise<void> {
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
  } catch (err) {
    throw new BackupRunnerError(
      'RESTORE_NOT_PRIVILEGED',
      `an in-place restore into ${name} puts the audit rows after the backup back as they were, which needs session_replication_role: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

function execRoleFor(options: RestoreOptions): string {
  if (!options.execRole) throw new BackupRunnerError('RESTORE_EXEC_ROLE_MISSING', 'an in-place restore needs the exec role (CUTTER_EXEC_ROLE) to reset its grants');
  return options.execRole;
}
