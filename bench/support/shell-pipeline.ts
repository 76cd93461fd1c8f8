import { spawn } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { DUMP_COMPRESS_LEVEL } from '../../shared/backup/pgdump.js';
import { timed } from '../harness.js';

/**
 * The encrypted backup as an operator would type it in a shell: the floor
 * of the backup figure, and the backup half of the bare hand path under the
 * dry-run and whole-run figures (a run must take and prove a backup, DESIGN §1).
 */

/** The floor exactly as an operator would write it (a shell is the point here; no input reaches it but our own paths). */
export const FLOOR_PIPELINE = 'pg_dump -Fc "$1" | gpg --encrypt -r "$2" > "$3"';
/** The same pipeline with cutter's compression settings, to show what cutter's own checks cost at equal compression work. */
export const SAME_SETTINGS_PIPELINE = `pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL} "$1" | gpg --compress-algo none --encrypt -r "$2" > "$3"`;

/** Runs one of the pipelines above: $1 the database URL, $2 the recipient's fingerprint, $3 the output file. */
export function shellPipeline(script: string, url: string, fpr: string, home: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script, 'sh', url, fpr, file], {
      env: { ...process.env, GNUPGHOME: home },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`shell pipeline exit ${String(code)}: ${stderr}`))));
  });
}

/** Times one run of the pipeline at cutter's settings into file, then removes the file; its seconds and the file's size. */
export async function timeSameSettingsPipeline(url: string, key: { fpr: string; home: string }, file: string): Promise<{ seconds: number; bytes: number }> {
  const { seconds } = await timed(() => shellPipeline(SAME_SETTINGS_PIPELINE, url, key.fpr, key.home, file));
  const bytes = statSync(file).size;
  rmSync(file, { force: true });
  return { seconds, bytes };
}
