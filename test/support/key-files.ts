import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { errorCode } from '../../shared/errors.js';

/** A maker of scratch directories for key files, all removed after the test file. */
export function scratchDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

/** 'loaded', or the code SOVEREIGN_KEYS at `source` is refused with. */
export async function keysLoadCode(source: string): Promise<string> {
  try {
    await loadTrustedKeys(source);
    return 'loaded';
  } catch (err) {
    return errorCode(err);
  }
}
