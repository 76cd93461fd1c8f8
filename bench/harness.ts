import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';

/** One row of BENCHMARKS.md: a figure beside its floor, measured in the same run. */
export interface Figure {
  name: string;
  /** What cutter does, e.g. "4.21 s" or "812k rec/s". */
  value: string;
  /** The floor measured in the same run, e.g. "3.90 s (raw SQL)". */
  floor: string;
  /** value / floor for times, floor / value for throughputs: lower is better, 1.0 is the floor. */
  ratio: number | null;
  goal: string;
  met: boolean | null;
  notes?: string;
}

/** A benchmark: measures its figures (each beside its floor) in this process run. */
export interface Bench {
  name: string;
  run: (options: { quick: boolean; log: (line: string) => void }) => Promise<Figure[]>;
}

/** Wall time of fn in seconds, and its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const start = process.hrtime.bigint();
  const result = await fn();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, result };
}

function versionOf(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'not found';
  }
}

/** Renders the results table and the machine it was measured on as markdown. */
export function renderMarkdown(figures: Figure[], command: string): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const lines = [
    '# Benchmarks',
    '',
    `Measured ${new Date().toISOString()} by \`${command}\` on ${os.cpus().length} × ${cpu}, ` +
      `${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}.`,
    `Versions: node ${process.version}; ${versionOf('psql', ['--version'])}; ${versionOf('redis-server', ['--version'])}; ${versionOf('gpg', ['--version'])}.`,
    '',
    'Each figure is measured beside its floor in the same run; ratio = cutter ÷ floor (lower is better), to three decimals so a ratio just over its goal does not print as the goal.',
    '',
    '| figure | cutter | floor (same run) | ratio | goal | met |',
    '|---|---|---|---|---|---|',
    ...figures.map(
      (f) =>
        `| ${f.name} | ${f.value} | ${f.floor} | ${f.ratio === null ? '—' : f.ratio.toFixed(3)} | ${f.goal} | ${
          f.met === null ? '—' : f.met ? 'yes' : 'no'
        } |`,
    ),
    '',
  ];
  const notes = figures.filter((f) => f.notes);
  if (notes.length) lines.push('## Notes', '', ...notes.map((f) => `- **${f.name}**: ${f.notes ?? ''}`), '');
  return lines.join('\n');
}

/** Writes BENCHMARKS.md at the repository root. */
export function writeBenchmarks(markdown: string): void {
  writeFileSync(new URL('../../BENCHMARKS.md', import.meta.url), markdown);
}
