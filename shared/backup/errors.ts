import { CutterError } from '../errors.js';

/**
 * Every way the backup runner can refuse or fail, each with the one thing the
 * operator should do about it. The codes are stable (the run's backup phase and
 * scripts branch on them); the wording of the fixes may change.
 */
export const BACKUP_FIXES = {
  BACKUP_SPEC_INVALID: 'set the named variable (or option) to a valid value and run again',
  GPG_MISSING: 'install GnuPG 2.2 or newer (e.g. apt-get install gnupg) and make sure gpg is on PATH',
  GPG_KEY_UNKNOWN:
    "import the recipient's public key into GNUPGHOME (gpg --import KEY.asc) or set BACKUP_GPG_FPR to the primary key's fingerprint",
  GPG_KEY_EXPIRED:
    'extend the key (gpg --quick-set-expire FPR 1y, also for its subkeys) and re-import the public key, or set BACKUP_GPG_FPR to a current key',
  GPG_KEY_REVOKED: "the key was revoked: set BACKUP_GPG_FPR to the operator's replacement key",
  GPG_NO_ENCRYPTION_SUBKEY:
    'add an encryption subkey (gpg --quick-add-key FPR cv25519 encr 1y) and re-import the public key',
  GPG_KEY_UNUSABLE: 'gpg refuses to encrypt to this key: run gpg --encrypt -r FPR by hand to see why, then fix or replace the key',
  GPG_SECRET_KEY_MISSING: "import the recipient's secret key into GNUPGHOME on this machine: decrypting needs it",
  PG_DUMP_MISSING: "install the PostgreSQL client tools (pg_dump, pg_restore) of the server's major version or newer",
  PG_DUMP_TOO_OLD: "install pg_dump of the server's major version or newer and put it first on PATH",
  BACKUP_DIR_MISSING: 'create the directory (mkdir -p) or point BACKUP_DIR / --out at an existing one',
  BACKUP_DIR_UNWRITABLE: 'give the user running cutter write permission on the directory, or choose another one',
  BACKUP_DIR_FULL: 'free space on that volume or point BACKUP_DIR / --out at a larger one',
  DB_UNREACHABLE: 'check DATABASE_URL, that PostgreSQL is running, and that it accepts this user',
  DB_READ_DENIED: 'grant the backup user SELECT on every table (or take backups as the schema owner)',
  PG_DUMP_FAILED: "read pg_dump's error above and fix its cause; the partial file was removed",
  GPG_FAILED: "read gpg's error above and fix its cause; the partial file was removed",
  BACKUP_WRITE_FAILED: 'check the backup volume (space, permissions, health); the partial file was removed',
  BACKUP_FINGERPRINT_FAILED: 'the user running the backup must be able to read every table (SELECT); the partial file was removed',
  BACKUP_ABORTED: 'the backup was cancelled before it finished; nothing was kept, run it again',
  BACKUP_FILE_MISSING: 'name an existing backup file (the .pgdump.gpg, not its manifest)',
  BACKUP_MANIFEST_MISSING: 'keep the .manifest.json beside its backup file: without it the backup cannot be checked',
  BACKUP_MANIFEST_INVALID: 'the manifest is not one cutter wrote: restore it from where the backup was taken',
  BACKUP_VERIFY_SIZE: 'the file was truncated or extended after it was written: do not restore it, use another backup',
  BACKUP_VERIFY_SHA256: 'the file changed after it was written: do not restore it, use another backup',
  BACKUP_VERIFY_RECIPIENT: "the file is not encrypted to the manifest's key: it is not the backup the manifest describes",
  BACKUP_VERIFY_READ: 'the decrypted dump cannot be read to its end: do not rely on this backup, take a new one',
  BACKUP_DRILL_MISMATCH: 'the restored tables differ from the manifest: do not rely on this backup, take a new one',
  RESTORE_TARGET_NOT_EMPTY:
    'restore into an empty (or new) database, or pass --force (into a cutter database it restores the corpus tables only, into any other it replaces the objects the backup contains)',
  RESTORE_FAILED: "read pg_restore's error above; it ran in one transaction, so nothing was restored",
  RESTORE_CHAIN_DIVERGED:
    "this backup is not an earlier state of this database's audit trail (another database's, or one of the two was altered): restore it into a new database to inspect it",
  RESTORE_NOT_A_CORPUS: 'restore it into a new database: an in-place restore puts back the corpus tables of a backup of a cutter database',
  RESTORE_SCHEMA_MISMATCH: 'migrate the database with the cutter version that took the backup in mind, or restore the backup into a new database',
} as const;

export type BackupErrorCode = keyof typeof BACKUP_FIXES;

/** The one line that says what to do about a backup error code. */
export function fixFor(code: string): string {
  return (BACKUP_FIXES as Record<string, string>)[code] ?? 'see the message above';
}

/** `what — fix`: the form every backup failure message takes. */
export function withFix(code: BackupErrorCode, what: string): string {
  return `${what} — ${fixFor(code)}`;
}

/**
 * Failures a later attempt can cure on its own (a restarting server, a worker
 * shut down mid-dump). Everything else needs a person first, so the run's phase
 * should not burn retries on it.
 */
const RETRYABLE = new Set<BackupErrorCode>(['DB_UNREACHABLE', 'PG_DUMP_FAILED', 'BACKUP_ABORTED']);

/** A refusal or failure of the backup runner; its message already carries the fix. */
export class BackupRunnerError extends CutterError {
  override readonly code: BackupErrorCode;
  /** The spec field (or environment variable) at fault, when one is. */
  readonly field: string | undefined;

  constructor(code: BackupErrorCode, what: string, options: { field?: string; cause?: unknown } = {}) {
    super(code, withFix(code, what), {
      unrecoverable: !RETRYABLE.has(code),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
    });
    this.code = code;
    this.name = 'BackupRunnerError';
    this.field = options.field;
  }
}
