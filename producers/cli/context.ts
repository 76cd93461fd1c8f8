import { config, type Config } from '../../shared/config.js';
import { createPool, type Pool } from '../../shared/db/pool.js';

/**
 * What a command needs, created lazily so `cutter --help` opens no connection,
 * and closed once when the command ends.
 */
export class CliContext {
  private pool: Pool | undefined;
  readonly cfg: Config = config();

  /** The pool for DATABASE_URL. */
  db(): Pool {
    this.pool ??= createPool(this.cfg.DATABASE_URL, { max: 4, applicationName: 'cutter-cli' });
    return this.pool;
  }

  async close(): Promise<void> {
    await this.pool?.end();
  }
}

/** Writes one line to stdout. */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

let printedJson = false;

/** Prints a JSON object (snake_case keys are the caller's contract). */
export function outJson(value: unknown): void {
  printedJson = true;
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Whether the command already printed its JSON object: an error after it (exit 1) must not add a second one. */
export function jsonPrinted(): boolean {
  return printedJson;
}

/** Formats rows as an aligned plain-text table. */
export function table(headers: string[], rows: (string | number | boolean | null)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
