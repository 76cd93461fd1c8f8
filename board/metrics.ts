import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Pool } from '../shared/db/pool.js';
import { PHASES, type Phase } from '../shared/jobs/catalog.js';
import type { Queue } from 'bullmq';
import { RUN_STATUSES } from '../shared/runs/status.js';

/** The board's Prometheus metrics; one registry per app so two boards in one process do not collide. */
export interface BoardMetrics {
  registry: Registry;
  approvals: Counter<'outcome' | 'code'>;
}

/** BullMQ job states reported as queue depth. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'prioritized'] as const;

/** Seconds; phases range from milliseconds (grant probe) to many minutes (backup of a large corpus). */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Creates the registry: run and queue figures are read at scrape time, approvals counted as they happen. */
export function createMetrics(pool: Pool, queues: Record<Phase, Queue>): BoardMetrics {
  const registry = new Registry();
  const approvals = new Counter({
    name: 'cutter_approvals_total',
    help: 'Approvals posted to the endpoint, by outcome (accepted/refused) and code (the gate, or the refusal code)',
    labelNames: ['outcome', 'code'],
    registers: [registry],
  });
  new Gauge({
    name: 'cutter_runs',
    help: 'Runs in the system of record, by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ status: string; n: number }>(
        'SELECT status, count(*)::int AS n FROM cutter_governance.run GROUP BY status',
      );
      // Every status has a series, 0 when no run has it: a series that vanishes reads as "no data", not as none.
      for (const status of RUN_STATUSES) this.set({ status }, 0);
      for (const r of rows) this.set({ status: r.status }, r.n);
    },
  });
  const finished = newlyFinishedPhases(pool);
  new Histogram({
    name: 'cutter_phase_duration_seconds',
    help: 'Durations of finished phases, each observed once (from run_phase; at start, the last 30 days)',
    labelNames: ['phase', 'state'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
    async collect() {
      // The workers, not the board, run the phases: each scrape observes those that finished since the last one.
      for (const r of await finished()) this.observe({ phase: r.phase, state: r.state }, Math.max(0, r.s));
    },
  });
  new Gauge({
    name: 'cutter_queue_jobs',
    help: 'Jobs in each phase queue, by BullMQ state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        PHASES.map(async (phase) => {
          const counts = await queues[phase].getJobCounts(...QUEUE_STATES);
          for (const state of QUEUE_STATES) this.set({ queue: phase, state }, counts[state] ?? 0);
        }),
      );
    },
  });
  collectDefaultMetrics({ register: registry });
  return { registry, approvals };
}

/**
 * How far back each read looks again: a phase's row is written with its
 * finished_at and committed a moment later, so a row may become visible
 * after one that finished later. Far longer than any such commit takes.
 */
const LATE_COMMIT_MARGIN_MS = 10 * 60_000;

/**
 * Phase rows that finished since the last call, each returned once, so the
 * histogram's buckets and count only ever grow (rate() and
 * histogram_quantile() need that). Rows seen within the margin are
 * remembered by key so the overlap is not observed twice.
 */
function newlyFinishedPhases(pool: Pool): () => Promise<{ phase: string; state: string; s: number }[]> {
  let since: Date | null = null;
  const seen = new Map<string, number>();
  return async () => {
    const { rows } = await pool.query<{ run_id: string; phase: string; state: string; finished_at: Date; s: number }>(
      `SELECT run_id, phase, state, finished_at, extract(epoch FROM finished_at - started_at)::float8 AS s
         FROM cutter_governance.run_phase
        WHERE finished_at IS NOT NULL AND finished_at > coalesce($1::timestamptz, now() - interval '30 days')
        ORDER BY finished_at`,
      [since],
    );
    const fresh = rows.filter((r) => {
      const key = `${r.run_id}\u0000${r.phase}\u0000${r.finished_at.getTime()}`;
      if (seen.has(key)) return false;
      seen.set(key, r.finished_at.getTime());
      return true;
    });
    const newest = rows.at(-1)?.finished_at.getTime();
    if (newest !== undefined) {
      const horizon = newest - LATE_COMMIT_MARGIN_MS;
      for (const [key, at] of seen) if (at < horizon) seen.delete(key);
      since = new Date(since === null ? horizon : Math.max(since.getTime(), horizon));
    }
    return fresh;
  };
}

/**
 * Counts each answer of the approval endpoint without touching its code:
 * it wraps res.json for POST …/approvals and reads the status and code the
 * route (or the error handler) sends.
 */
export function countApprovals(metrics: BoardMetrics): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'POST' || !/^\/runs\/[^/]+\/approvals\/?$/.test(req.path)) {
      next();
      return;
    }
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      const b = body as { gate?: unknown; error?: { code?: unknown } } | null;
      const text = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
      if (res.statusCode === 201) metrics.approvals.inc({ outcome: 'accepted', code: text(b?.gate, 'unknown') });
      else metrics.approvals.inc({ outcome: 'refused', code: text(b?.error?.code, String(res.statusCode)) });
      return json(body);
    };
    next();
  };
}
