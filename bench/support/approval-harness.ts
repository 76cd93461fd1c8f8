import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import type { Config } from '../../shared/config.js';
import type { Pool } from '../../shared/db/pool.js';
import { createRedis } from '../../shared/redis.js';

/** What the approval bench's two sides (cutter and its bare floor) share. */

/** The gate's delay in the bench: long enough that only a promote wakes it. */
export const WINDOW_MS = 3600_000;

/** A scratch database with the demo target, a queue prefix and a key folder. */
export interface Harness {
  cfg: Config;
  pool: Pool;
  prefix: string;
  dir: string;
  close: () => Promise<void>;
}

/** Per run: POST → next job active (ms), and POST → its answer (ms). */
export interface Measured {
  ms: number[];
  answered: number[];
}

/**
 * One side of the measurement (cutter or its floor), open for the whole
 * figure, so the bench can interleave their rounds: the machine's
 * slow drifts then fall on every side alike instead of on whichever ran
 * while it was slow.
 */
export interface Side {
  /** Measures one POST → next job active into measured. */
  round: () => Promise<void>;
  measured: Measured;
  /** Refusals per second of count requests refused by this side (cutter: a forged signature; a floor: a bare 403). */
  refusedPerS: (count: number) => Promise<number>;
  close: () => Promise<void>;
}

/** Worker connections the bench opens; BullMQ leaves a connection it was given open on close. */
const connections: RedisClient[] = [];
export function connection(cfg: Config): RedisClient {
  const c = createRedis(cfg.REDIS_URL, 'worker');
  connections.push(c);
  return c;
}
export function disconnectAll(): void {
  for (const c of connections.splice(0)) c.disconnect();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

export function summary(ms: number[]): { median: number; p95: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { median: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) };
}

export async function post(url: string, body: string): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  return res.status;
}

/** Waits (bounded) for a job to reach `delayed`. */
export async function untilDelayed(queue: Queue, id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await queue.getJob(id).then((j) => j?.getState())) === 'delayed') return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`job ${id} never became delayed`);
}

/** Untimed requests before a throughput is timed, the same for cutter and its floor. */
export const WARMUP_REQUESTS = 1000;

/** Runs `count` POSTs of body (after WARMUP_REQUESTS untimed), `concurrency` at a time, from a client process of its own; returns requests per second. */
export async function throughput(url: string, body: string, count: number, concurrency: number, expectStatus: number): Promise<number> {
  const script = fileURLToPath(new URL('./load.js', import.meta.url));
  const args = [script, url, String(count), String(concurrency), String(expectStatus), String(WARMUP_REQUESTS)];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.end(body);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`load generator failed (${String(code)}): ${err}`);
  return (JSON.parse(out) as { perS: number }).perS;
}
