import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the demo keeps its throwaway keys (the sovereign's, the backup's). */
export function demoHome(): string {
  return join(homedir(), '.cutter-demo');
}

/**
 * A file of the repository's demo/ folder. Found from this module upwards
 * (the first folder holding package.json), so the same call works from the
 * TypeScript source and from dist/, which sit at different depths.
 */
export function demoFile(...parts: string[]): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('the demo files were not found: no package.json above shared/demo');
    dir = up;
  }
  return join(dir, 'demo', ...parts);
}
