import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { type BackupErrorCode } from './errors.js';
import type { BackupManifest } from './manifest.js';

/** Size and sha256 of a file, read as a stream (a backup can be far larger than memory). */
export async function digestFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(createReadStream(file), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    yield* [];
  });
  return { bytes, sha256: hash.digest('hex') };
}

export type IntegrityCheck = { name: 'size' | 'sha256'; ok: boolean; code?: BackupErrorCode; what: string };

/**
 * The file's size and sha256 against the manifest. Without the private key
 * this is what detects tampering; the size is checked on its own so that a
 * truncated file says so plainly.
 */
export async function checkIntegrity(file: string, manifest: BackupManifest): Promise<IntegrityCheck[]> {
  const size = (await stat(file)).size;
  const digest = await digestFile(file);
  return [
    size === manifest.bytes
      ? { name: 'size', ok: true, what: `${size} bytes, as the manifest says` }
      : { name: 'size', ok: false, code: 'BACKUP_VERIFY_SIZE', what: `the file has ${size} bytes, the manifest says ${manifest.bytes}` },
    digest.sha256 === manifest.sha256
      ? { name: 'sha256', ok: true, what: `sha256 ${digest.sha256} matches the manifest` }
      : { name: 'sha256', ok: false, code: 'BACKUP_VERIFY_SHA256', what: `sha256 ${digest.sha256} differs from the manifest's ${manifest.sha256}` },
  ];
}
