import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Pool } from '../shared/db/pool.js';
import { PHASES, type Phase } from '../shared/jobs/catalog.js';
import type { Queue } from 'bullmq';

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
      this.reset();
      for (const r of rows) this.set({ status: r.status }, r.n);
    },
  });
  new Histogram({
    name: 'cutter_phase_duration_seconds',
    help: 'Durations of finished phases (from run_phase, last 30 days)',
    labelNames: ['phase', 'state'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
    async collect() {
      // Rebuilt from Postgres at each scrape: the workers, not the board, run the phases.
      const { rows } = await pool.query<{ phase: string; state: string; s: number }>(
        `SELECT phase, state, extract(epoch FROM finished_at - started_at)::float8 AS s
           FROM cutter_governance.run_phase
          WHERE finished_at IS NOT NULL AND finished_at > now() - interval '30 days'
          LIMIT 100000`,
      );
      this.reset();
      for (const r of rows) this.observe({ phase: r.phase, state: r.state }, Math.max(0, r.s));
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
  return { registry, approvals };
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
