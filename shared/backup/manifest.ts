import { open, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { BackupRunnerError } from './errors.js';

/**
 * The manifest: a JSON file beside each backup that says what it holds and how
 * to check it. Keys are snake_case and stable: other tools read them.
 */

export const MANIFEST_FORMAT = 'cutter-backup-manifest/1';

const hex = (n: number) => new RegExp(`^[0-9A-F]{${n}}$`);

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  run_id: z.string().nullable(),
  file: z.string().min(1),
  started_utc: z.string(),
  finished_utc: z.string(),
  database: z.string(),
  server: z.string(),
  server_version: z.string(),
  pg_dump_version: z.string(),
  dump_format: z.literal('custom'),
  compression: z.string(),
  recipient_fpr: z.string().regex(hex(40)),
  encryption_subkey_id: z.string().regex(hex(16)),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  fingerprint_method: z.string(),
  tables: z.array(
    z.object({
      name: z.string(),
      rows: z.number().int().nonnegative(),
      hash: z.enum(['record', 'text']),
      content_hash: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ),
  warnings: z.array(z.string()),
  /**
   * The audit chain's head in the dump's snapshot (`SEQ:HASH` of the last
   * audit row the backup holds), kept outside the database for `cutter audit
   * verify --head`; null for a database without a chain, and read as null from
   * a manifest written before heads were recorded.
   */
  audit_head: z.string().regex(/^[0-9]+:[0-9a-f]{64}$/).nullable().default(null),
});

export type BackupManifest = z.output<typeof manifestSchema>;

/** Where the manifest of a backup file lives. */
export function manifestPathFor(file: string): string {
  return `${file}.manifest.json`;
}

/** Reads and checks the manifest beside a backup file. */
export async function readManifest(file: string): Promise<BackupManifest> {
  const path = manifestPathFor(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new BackupRunnerError('BACKUP_MANIFEST_MISSING', `no manifest ${path}`, { cause: err });
    }
    throw new BackupRunnerError('BACKUP_MANIFEST_INVALID', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BackupRunnerError('BACKUP_MANIFEST_INVALID', `${path} is not JSON`, { cause: err });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BackupRunnerError('BACKUP_MANIFEST_INVALID', `${path}: ${issue?.path.join('.') || 'document'} ${issue?.message ?? 'is invalid'}`);
  }
  if (parsed.data.file !== basename(file)) {
    throw new BackupRunnerError('BACKUP_MANIFEST_INVALID', `${path} describes ${parsed.data.file}, not ${basename(file)}`);
  }
  return parsed.data;
}

/** Writes a file durably and atomically: a temporary name, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.partial`);
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await syncDirectory(dirname(path));
}

/** fsyncs a directory so a rename in it survives a crash (a no-op where directories cannot be opened). */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync().catch(() => undefined);
  } finally {
    await handle.close();
  }
}
