import type { Pool } from '../../shared/db/pool.js';
import { hasEnded } from '../../shared/runs/status.js';
import { runView, type RunView } from '../../shared/runs/view.js';

const POLL_MS = 200;

/**
 * Follows a run phase by phase, printing each phase as it starts and ends
 * (with its duration and records/bytes), until `until` says stop.
 */
export async function followRun(
  pool: Pool,
  runId: string,
  options: { until: (view: RunView) => boolean; print: (line: string) => void },
): Promise<RunView> {
  const seen = new Map<string, string>();
  for (;;) {
    const view = await runView(pool, runId);
    if (!view) throw new Error(`run ${runId} vanished`);
    for (const p of view.phases) {
      const key = `${p.state}:${JSON.stringify(progressOf(p.summary))}`;
      if (p.state === 'pending' || seen.get(p.phase) === key) continue;
      seen.set(p.phase, key);
      options.print(phaseLine(p));
    }
    if (options.until(view) || hasEnded(view.status)) return view;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function progressOf(summary: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['records', 'bytes', 'unit_count']) if (summary[k] !== undefined) out[k] = summary[k];
  return out;
}

/** `  ✓ discover        0.12 s  records=55 bytes=5.3 kB` */
export function phaseLine(p: RunView['phases'][number]): string {
  const mark = { active: '…', completed: '✓', failed: '✗', skipped: '-', pending: ' ' }[p.state] ?? '?';
  const took = p.duration_ms === null ? '' : `${(p.duration_ms / 1000).toFixed(2)} s`;
  const extra = Object.entries(progressOf(p.summary))
    .map(([k, v]) => `${k}=${k === 'bytes' ? humanBytes(Number(v)) : String(v)}`)
    .join(' ');
  const error = p.error ? `  ${p.error.code ?? ''}: ${p.error.message}` : '';
  return `  ${mark} ${p.phase.padEnd(14)} ${took.padStart(8)}  ${extra}${error}`.trimEnd();
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
