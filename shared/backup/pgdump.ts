import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { BackupRunnerError } from './errors.js';
import { followFile } from './follow.js';
import { encryptArgs, statusLines } from './gpg.js';
import { libpqTarget } from './pgtools.js';
import { childEnd, collectStderr, describeEnd, lastLines } from './proc.js';

/**
 * The dump pipeline: pg_dump -Fc → gpg --encrypt → file, sha256 on the way.
 *
 * The bytes move between the processes as in `pg_dump | gpg > file`: pg_dump
 * writes into gpg's stdin through a kernel pipe (gpg's stdin is handed to
 * pg_dump as its stdout) and gpg writes into the open temporary file (handed
 * to it as its stdout). So the plaintext never passes through this process
 * and never touches the disk, and the pipe's blocking is the backpressure
 * between the two. The sha256 is taken on the way by reading the ciphertext
 * back as gpg appends it (from the page cache, a chunk at a time): measured,
 * that costs a quarter of the CPU of relaying every byte through a Node
 * stream, CPU that pg_dump's compression needs on a small machine.
 */

/**
 * zlib level 1 for pg_dump's custom format. Compression is most of pg_dump's
 * CPU time, and this dump is on the critical path of a run: the corpus lock
 * is held while it is taken. Measured here on 200,000 units: level 1 takes
 * 0.52 s against 1.28 s for pg_dump's default (6), for a file 3% larger.
 * Decompressing (verify, restore) costs about the same at any level.
 */
export const DUMP_COMPRESS_LEVEL = 1;

/** What the manifest records about compression (gpg's is off: see encryptArgs). */
export const COMPRESSION_NOTE = `pg_dump zlib level ${DUMP_COMPRESS_LEVEL}; gpg none`;

/** How long pg_dump may wait for a lock before the backup fails instead of hanging. */
export const LOCK_WAIT_SECONDS = 60;

const SYNC_EVERY_BYTES = 8 * 1024 * 1024;

/** Enough ciphertext to hold the session key packet of any key gpg makes (RSA-4096 needs ~530 bytes). */
export const HEAD_BYTES = 4096;

export interface DumpStreamInput {
  databaseUrl: string;
  /** A snapshot exported by a transaction that stays open until the dump ends. */
  snapshot: string;
  recipientFpr: string;
  gnupgHome: string | undefined;
  /** The open, empty temporary file the ciphertext goes to. */
  out: FileHandle;
  /** Called once pg_dump and gpg have both been started, with pg_dump's pid (undefined if it did not start). */
  onSpawned: (dumpPid: number | undefined) => void;
  onBytes: (bytes: number) => void;
  /** Called once with the first HEAD_BYTES of ciphertext (or all of it, if less), while the rest still flows. */
  onHead: (head: Buffer) => void;
  signal: AbortSignal | undefined;
}

export interface DumpStreamResult {
  bytes: number;
  sha256: string;
  /** pg_dump warnings (not errors), kept for the manifest. */
  warnings: string[];
}

// pg_dump says "pg_dump: error: ..." (15+) or "pg_dump: [archiver] ... ERROR" (older).
const PG_DUMP_ERROR = /\b(error|fatal|panic)\b/i;

/** Runs the pipeline to the end; throws BackupRunnerError naming the part that failed first. */
export async function dumpEncrypted(input: DumpStreamInput): Promise<DumpStreamResult> {
  if (input.signal?.aborted) throw new BackupRunnerError('BACKUP_ABORTED', 'the backup was aborted');
  const gpg = spawn('gpg', encryptArgs(input.gnupgHome, input.recipientFpr), { stdio: ['pipe', input.out.fd, 'pipe'] });
  const gpgIn = gpg.stdin;
  if (!gpgIn) throw new Error('gpg was spawned without a stdin pipe');
  const gpgEnded = childEnd(gpg);
  const gpgStderr = collectStderr(gpg);
  try {
    await once(gpg, 'spawn');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw code === 'ENOENT'
      ? new BackupRunnerError('GPG_MISSING', 'gpg is not on PATH', { cause: err })
      : new BackupRunnerError('GPG_FAILED', `gpg could not start: ${(err as Error).message}`, { cause: err });
  }

  const { dbname, env } = libpqTarget(input.databaseUrl);
  const dump = spawn(
    'pg_dump',
    [
      '--format=custom',
      `--compress=${DUMP_COMPRESS_LEVEL}`,
      `--snapshot=${input.snapshot}`,
      `--lock-wait-timeout=${LOCK_WAIT_SECONDS * 1000}`,
      '--no-password',
      '--dbname', dbname,
    ],
    // gpg.stdin is duplicated into pg_dump as its stdout (see the comment at the top).
    { stdio: ['ignore', gpgIn, 'pipe'], env },
  );
  const dumpEnded = childEnd(dump);
  const dumpStderr = collectStderr(dump);
  // Our copy of the write end must close, or gpg would never see the end of the dump.
  gpgIn.destroy();
  input.onSpawned(dump.pid);

  let killed = false;
  const stopAll = () => {
    killed = true;
    for (const child of [dump, gpg]) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  input.signal?.addEventListener('abort', stopAll, { once: true });
  if (input.signal?.aborted) stopAll();

  const hash = createHash('sha256');
  let bytes = 0;
  let head: Buffer | undefined = Buffer.alloc(0);
  const takeHead = (chunk: Buffer) => {
    if (!head) return;
    head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)]);
    if (head.length >= HEAD_BYTES) {
      input.onHead(head);
      head = undefined;
    }
  };
  let readError: unknown;
  // Flushing to disk as the file grows leaves the final fsync (before the
  // rename) only the tail to write, instead of the whole file at the end.
  let syncing: Promise<void> | undefined;
  let syncedUpTo = 0;
  const syncNow = () => {
    syncedUpTo = bytes;
    syncing = input.out.datasync().then(
      () => (syncing = undefined),
      (err: unknown) => {
        readError ??= err;
        stopAll();
      },
    );
  };
  const reading = followFile(input.out, gpgEnded, (chunk) => {
    hash.update(chunk);
    takeHead(chunk);
    bytes += chunk.length;
    if (!syncing && bytes - syncedUpTo >= SYNC_EVERY_BYTES) syncNow();
    input.onBytes(bytes);
  }).catch((err: unknown) => {
    readError ??= err;
    stopAll();
  });

  const [dumpEnd, gpgEnd] = await Promise.all([dumpEnded, gpgEnded, reading]).finally(() =>
    input.signal?.removeEventListener('abort', stopAll),
  );
  if (head) input.onHead(head);
  await syncing;

  if (input.signal?.aborted) throw new BackupRunnerError('BACKUP_ABORTED', 'the backup was aborted');
  if (readError) throw new BackupRunnerError('BACKUP_WRITE_FAILED', `reading or syncing the backup file failed: ${(readError as Error).message}`, { cause: readError });

  const dumpText = dumpStderr.toString();
  const gpgText = gpgStderr.toString();
  const status = statusLines(gpgText).map((s) => s.keyword);
  const gpgFailed =
    gpgEnd.code !== 0 ||
    gpgEnd.signal !== null ||
    status.some((k) => k === 'FAILURE' || k === 'ERROR' || k === 'INV_RECP') ||
    !status.includes('END_ENCRYPTION');
  const dumpLines = dumpText.split('\n').filter((l) => l.trim() !== '');
  const dumpFailed = dumpEnd.code !== 0 || dumpEnd.signal !== null || dumpLines.some((l) => PG_DUMP_ERROR.test(l));
  // pg_dump dying of a broken pipe is gpg's failure showing, not pg_dump's.
  const brokenPipe = dumpEnd.signal === 'SIGPIPE' || /broken pipe/i.test(dumpText);

  if (dumpEnd.spawnError) {
    throw dumpEnd.spawnError.code === 'ENOENT'
      ? new BackupRunnerError('PG_DUMP_MISSING', 'pg_dump is not on PATH')
      : new BackupRunnerError('PG_DUMP_FAILED', `pg_dump ${describeEnd(dumpEnd)}`);
  }
  if (dumpFailed && !(gpgFailed && brokenPipe)) {
    throw new BackupRunnerError('PG_DUMP_FAILED', `pg_dump failed (${describeEnd(dumpEnd)}): ${lastLines(dumpText)}`);
  }
  if (gpgFailed) {
    // gpg is the writer of the file: a full volume shows as its write error.
    const full = /no space left|quota exceeded/i.test(gpgText);
    throw new BackupRunnerError(full ? 'BACKUP_DIR_FULL' : 'GPG_FAILED', `gpg failed (${describeEnd(gpgEnd)}): ${lastLines(gpgText)}`);
  }
  if (killed) throw new BackupRunnerError('BACKUP_ABORTED', 'the backup was stopped before it finished');
  return { bytes, sha256: hash.digest('hex'), warnings: dumpLines.filter((l) => /warning/i.test(l)).map((l) => l.trim()) };
}
