import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { CutterError } from '../errors.js';

/**
 * Where a snapshot's bytes come from. Staging (stage.ts) and validation
 * (validate.ts) read one way whatever the source: the operator's file, or
 * input computed from the database (a revert's, shared/revert/input.ts), so
 * a computed snapshot is checked (C5) and staged by the same code as a file.
 */
export interface SnapshotSource {
  /** How messages name it: the file's path, or what it was computed from. */
  readonly name: string;
  /**
   * Its size in bytes (what sizes the key index; an estimate for computed
   * input) and a stamp that differs once its bytes may differ.
   */
  stat(): Promise<{ size: number; stamp: string }>;
  /** Its bytes from the first; opened again, the same bytes (the validator's second look). */
  open(): AsyncIterable<Buffer>;
}

// Cutting lines out of 64 KiB strings measured faster than out of 16 KiB or
// 1 MiB ones (fewer calls vs. large strings that strain the collector).
const CHUNK_BYTES = 64 * 1024;

/** Size and identity (size, mtime, inode) of a file, or a bad-input error naming what is wrong with the path. */
export async function statSnapshot(path: string): Promise<{ size: number; stamp: string }> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new CutterError('SNAPSHOT_NOT_A_FILE', `snapshot ${path} is not a regular file`, { kind: 'bad_input' });
    return { size: s.size, stamp: `${s.size}:${s.mtimeMs}:${s.ino}` };
  } catch (err) {
    if (err instanceof CutterError) throw err;
    const code = (err as { code?: string }).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable' : (err as Error).message;
    throw new CutterError('SNAPSHOT_NOT_FOUND', `snapshot ${path} ${why}`, { kind: 'bad_input', cause: err });
  }
}

/** A snapshot file: its stamp is its size, mtime and inode, so a file replaced while it is read is noticed. */
export function fileSource(path: string): SnapshotSource {
  return {
    name: path,
    stat: () => statSnapshot(path),
    open: () => createReadStream(path, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>,
  };
}
