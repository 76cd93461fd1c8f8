import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type pg from 'pg';
import { formatHead, readChainHead } from '../audit/head.js';
import { BackupRunnerError } from './errors.js';
import { FINGERPRINT_METHOD, fingerprintTables, type DumpFingerprint } from './fingerprint.js';
import { packetRecipients } from './gpg.js';
import { MANIFEST_FORMAT, manifestPathFor, syncDirectory, writeFileAtomic, type BackupManifest } from './manifest.js';
import { recipientKeyIds } from './packets.js';
import { COMPRESSION_NOTE, dumpEncrypted, LOCK_WAIT_SECONDS } from './pgdump.js';
import { connect, databaseName, pgToolVersion, runningPgDumpVersion, serverMajor, serverOf, type ToolVersion } from './pgtools.js';
import { lastLines } from './proc.js';
import { checkRecipient, type RecipientKey } from './recipient.js';
import type { BackupSpec } from './spec.js';

export interface BackupResult {
  /** Absolute path of the encrypted dump. */
  file: string;
  manifestFile: string;
  manifest: BackupManifest;
}

export interface CreateBackupOptions {
  runId?: string | undefined;
  /** Ciphertext bytes written so far; called at most every 250 ms and once at the end. */
  onProgress?: ((bytesWritten: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

const PROGRESS_EVERY_MS = 250;


interface ServerInfo {
  snapshot: string;
  version: string;
  num: string;
  db: string;
}

/**
 * Takes an encrypted backup: pg_dump -Fc into gpg for the recipient into
 * BACKUP_DIR, with a manifest beside it. Either both files exist and are
 * complete, or neither does: every failure removes what was written and throws
 * a BackupRunnerError.
 */
export async function createBackup(spec: BackupSpec, options: CreateBackupOptions = {}): Promise<BackupResult> {
  if (options.signal?.aborted) throw new BackupRunnerError('BACKUP_ABORTED', 'the backup was aborted before it started');
  const startedUtc = new Date();
  await requireDirectory(spec.outDir);

  // The key and pg_dump checks start once pg_dump and gpg are running, so
  // only the connection stands between the call and the dump. Nothing is kept
  // unless they pass, and a failed check stops the dump and names the failure.
  const stop = new AbortController();
  let checks: Checks | undefined;
  const client = await connectForSnapshot(spec);
  const onCallerAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });

  let out: FileHandle | undefined;
  const written: string[] = [];
  try {
    const server = await exportSnapshot(client);
    const auditHead = await chainHeadInSnapshot(client);
    // pg_dump's version is asked of the binary it runs once it streams (Debian's
    // wrapper has exec'd it by then), or of PATH if it never got that far.
    let markStreaming: () => void = () => undefined;
    const streaming = new Promise<void>((resolve) => (markStreaming = resolve));
    const checksStarted = (dumpPid?: number) =>
      (checks ??= startChecks(spec, server, () => stop.abort(), async () => {
        await streaming;
        return (dumpPid !== undefined ? await runningPgDumpVersion(dumpPid) : undefined) ?? (await pgToolVersion('pg_dump'));
      }));
    const file = join(spec.outDir, backupFileName(server.db, startedUtc, options.runId));
    const partial = join(spec.outDir, `.${basename(file)}.partial`);
    out = await openPartial(partial);
    written.push(partial);

    // The fingerprints start once the first ciphertext arrives, i.e. once
    // pg_dump has read the catalog and streams data: they then use the core
    // pg_dump's zlib does not, instead of slowing pg_dump's start. The session
    // key packets are at the head of the stream, so it is kept for the check
    // of the recipient.
    let fingerprints: Promise<DumpFingerprint[]> | undefined;
    let head: Buffer | undefined;
    let lastReport = 0;
    const streamed = await dumpEncrypted({
      databaseUrl: spec.databaseUrl,
      snapshot: server.snapshot,
      recipientFpr: spec.recipientFpr,
      gnupgHome: spec.gnupgHome,
      out,
      signal: stop.signal,
      onSpawned: checksStarted,
      onHead: (first) => {
        head = first;
        markStreaming();
        fingerprints = fingerprintInSnapshot(client);
        // A failed dump is reported at once; this outcome no longer matters then.
        fingerprints.catch(() => undefined);
      },
      onBytes: (bytes) => {
        const now = Date.now();
        if (options.onProgress && now - lastReport >= PROGRESS_EVERY_MS) {
          lastReport = now;
          options.onProgress(bytes);
        }
      },
    })
      // First, so the version check (which waits for streaming) can settle before the failure is explained.
      .finally(() => {
        markStreaming();
      })
      .catch(async (err: unknown) => {
        // A failed check explains a dump it stopped (or made fail) better than the dump's own error.
        throw (await checks?.failure()) ?? err;
      });
    // Durable before it is renamed into place: a crash must not leave a named backup with holes.
    await out.sync();
    await out.close();
    out = undefined;

    const { key, dumpTool } = await checksStarted().passed();
    let tables: DumpFingerprint[];
    try {
      tables = await (fingerprints ?? fingerprintInSnapshot(client));
    } catch (err) {
      throw new BackupRunnerError('BACKUP_FINGERPRINT_FAILED', `fingerprinting the tables failed: ${(err as Error).message}`, { cause: err });
    }

    // Record the subkey the packets actually name, and refuse a file that names any other.
    const keyIds = (head && recipientKeyIds(head)) ?? (await listedRecipients(spec.gnupgHome, partial));
    const [subkeyId] = keyIds;
    if (keyIds.length !== 1 || subkeyId === undefined || !key.encryptionKeyIds.includes(subkeyId)) {
      throw new BackupRunnerError('GPG_FAILED', `the new file is encrypted to ${keyIds.join(', ')}, not to a subkey of ${spec.recipientFpr}`);
    }
    if (stop.signal.aborted) throw new BackupRunnerError('BACKUP_ABORTED', 'the backup was aborted');

    await rename(partial, file);
    written.splice(written.indexOf(partial), 1, file);
    await syncDirectory(spec.outDir);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      run_id: options.runId ?? null,
      file: basename(file),
      started_utc: isoSeconds(startedUtc),
      finished_utc: isoSeconds(new Date()),
      database: server.db,
      server: serverOf(spec.databaseUrl),
      server_version: server.version,
      pg_dump_version: dumpTool.version,
      dump_format: 'custom',
      compression: COMPRESSION_NOTE,
      recipient_fpr: spec.recipientFpr,
      encryption_subkey_id: subkeyId,
      bytes: streamed.bytes,
      sha256: streamed.sha256,
      fingerprint_method: FINGERPRINT_METHOD,
      tables,
      warnings: streamed.warnings,
      audit_head: auditHead,
    };
    const manifestFile = manifestPathFor(file);
    await writeFileAtomic(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    options.onProgress?.(streamed.bytes);
    written.length = 0;
    return { file, manifestFile, manifest };
  } catch (err) {
    throw asBackupError(err);
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    await out?.close().catch(() => undefined);
    // Whatever a backup that did not finish wrote goes, so no one mistakes it for a backup.
    for (const path of written) await unlink(path).catch(() => undefined);
    // Closing the connection ends the read-only transaction; a ROLLBACK would
    // first wait behind a fingerprint query that no longer matters.
    await client.end().catch(() => undefined);
  }
}

interface Checks {
  /** The first failed check, in the order an operator should fix things; undefined when all passed. */
  failure: () => Promise<Error | undefined>;
  /** The checked key and pg_dump version; throws the first failure. */
  passed: () => Promise<{ key: RecipientKey; dumpTool: ToolVersion }>;
}

/**
 * The recipient key (listing only: the dump's own encryption is the trial) and
 * pg_dump's version against the server's, checked in the background. A failure
 * calls onFailure at once, so the dump stops early.
 */
function startChecks(
  spec: BackupSpec,
  server: ServerInfo,
  onFailure: () => void,
  dumpVersion: () => Promise<ToolVersion | undefined>,
): Checks {
  const recipient = checkRecipient(spec.gnupgHome, spec.recipientFpr, { trial: false }).then((r) => {
    if (!r.ok) throw new BackupRunnerError(r.code, r.what);
    return r.key;
  });
  const dumpTool = dumpVersion().then((v) => {
    if (!v) throw new BackupRunnerError('PG_DUMP_MISSING', 'pg_dump is not on PATH (or does not run)');
    const major = serverMajor(server.num);
    if (v.major < major) {
      throw new BackupRunnerError('PG_DUMP_TOO_OLD', `pg_dump ${v.version} cannot dump a PostgreSQL ${major} server (${server.version})`);
    }
    return v;
  });
  const settled = Promise.allSettled([recipient, dumpTool]);
  void settled.then((results) => {
    if (results.some((r) => r.status === 'rejected')) onFailure();
  });
  return {
    failure: async (): Promise<Error | undefined> => {
      const rejected = (await settled).find((r) => r.status === 'rejected');
      return rejected ? (rejected.reason as Error) : undefined;
    },
    passed: async (): Promise<{ key: RecipientKey; dumpTool: ToolVersion }> => {
      const [k, d] = await settled;
      if (k.status === 'rejected') throw k.reason;
      if (d.status === 'rejected') throw d.reason;
      return { key: k.value, dumpTool: d.value };
    },
  };
}

async function connectForSnapshot(spec: BackupSpec): Promise<pg.Client> {
  try {
    return await connect(spec.databaseUrl, 'cutter-backup');
  } catch (err) {
    const where = `${databaseName(spec.databaseUrl)} on ${serverOf(spec.databaseUrl)}`;
    throw new BackupRunnerError('DB_UNREACHABLE', `cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * One REPEATABLE READ transaction exports the snapshot pg_dump reads, and
 * fingerprints the tables in that same snapshot, so the manifest describes
 * exactly the data in the file.
 */
async function exportSnapshot(client: pg.Client): Promise<ServerInfo> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(`SET LOCAL lock_timeout = '${LOCK_WAIT_SECONDS}s'`);
  const info = await client.query<ServerInfo>(
    `SELECT pg_export_snapshot() AS snapshot, current_setting('server_version') AS version,
            current_setting('server_version_num') AS num, current_database() AS db`,
  );
  const row = info.rows[0];
  if (!row) throw new Error('pg_export_snapshot returned no row');
  return row;
}

/**
 * The audit chain's head in the exported snapshot: the last audit row the
 * dump holds (null in a database without a chain). Asked of the catalog
 * first, which any role may read: a role that may not read the chain gets
 * null here, and pg_dump then says what it may not read, without this
 * query's error ending the snapshot's transaction first.
 */
async function chainHeadInSnapshot(client: pg.Client): Promise<string | null> {
  const { rows } = await client.query<{ readable: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'cutter_governance' AND c.relname = 'audit_event'
                       AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')) AS readable`,
  );
  if (!rows[0]?.readable) return null;
  const head = await readChainHead(client);
  return head ? formatHead(head) : null;
}

/** Fingerprints inside the exporting transaction; a savepoint keeps a failure from ending that transaction (and with it pg_dump's snapshot). */
async function fingerprintInSnapshot(client: pg.Client): Promise<DumpFingerprint[]> {
  await client.query('SAVEPOINT cutter_fingerprint');
  try {
    const tables = await fingerprintTables(client);
    await client.query('RELEASE SAVEPOINT cutter_fingerprint');
    return tables;
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT cutter_fingerprint').catch(() => undefined);
    throw err;
  }
}

/** The session key recipients of a file as gpg lists them: for a head this process could not read. */
async function listedRecipients(gnupgHome: string | undefined, file: string): Promise<string[]> {
  const packets = await packetRecipients(gnupgHome, { file });
  if (!packets.ok) throw new BackupRunnerError('GPG_FAILED', `cannot list the packets of the new file: ${lastLines(packets.stderr)}`);
  return packets.keyIds;
}

/** Everything leaving createBackup is a BackupRunnerError with a code. */
function asBackupError(err: unknown): unknown {
  if (err instanceof BackupRunnerError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const message = (err as Error).message;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new BackupRunnerError('BACKUP_DIR_FULL', `the backup volume is full: ${message}`, { cause: err });
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    return new BackupRunnerError('DB_UNREACHABLE', `the database refused the backup snapshot: ${message}`, { cause: err });
  }
  if (typeof code === 'string') return new BackupRunnerError('BACKUP_WRITE_FAILED', message, { cause: err });
  return err;
}

/** cutter-<db>-<YYYYMMDDTHHMMSSZ>-<run id or random>.pgdump.gpg */
export function backupFileName(database: string, at: Date, runId: string | undefined): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `cutter-${safe(database)}-${stamp}-${runId ? safe(runId) : randomBytes(3).toString('hex')}.pgdump.gpg`;
}

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The output directory must exist and be a directory (writability shows when the file is opened). */
async function requireDirectory(dir: string): Promise<void> {
  const found = await stat(dir).catch(() => undefined);
  if (!found) throw new BackupRunnerError('BACKUP_DIR_MISSING', `${dir} does not exist`);
  if (!found.isDirectory()) throw new BackupRunnerError('BACKUP_DIR_MISSING', `${dir} is not a directory`);
}

/** Opens the temporary file, owner-only, refusing to reuse one that exists. */
async function openPartial(path: string): Promise<FileHandle> {
  try {
    // Read and write: gpg writes it, and we read the ciphertext back for the sha256.
    return await open(path, 'wx+', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new BackupRunnerError('BACKUP_DIR_UNWRITABLE', `cannot create ${path}: ${code}`, { cause: err });
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') throw new BackupRunnerError('BACKUP_DIR_FULL', `cannot create ${path}: ${code}`, { cause: err });
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new BackupRunnerError('BACKUP_DIR_MISSING', `cannot create ${path}: ${code}`, { cause: err });
    throw err;
  }
}
