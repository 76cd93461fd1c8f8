import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import express from 'express';
import { createRedis } from '../../shared/redis.js';
import { designBoundPath } from './approval-design-bound.js';
import { connection, post, throughput, untilDelayed, WINDOW_MS, type Harness, type Measured, type Side } from '../support/approval-harness.js';

/**
 * The approval figure's floor (issue 7): a bare express handler that inserts
 * one row and promotes a delayed job, timed to the next job (its parent)
 * becoming active. And, as a bound, the same path with the one thing DESIGN
 * adds to it: the gate's job checks the stored row in PostgreSQL and writes
 * its consumption (one statement, one committed write) before the next job
 * may run.
 */

export type FloorVariant = 'floor' | 'gate-bound' | 'design-bound';

/** What a variant does between the POST and the next job, and what it posts. */
export interface FloorPath {
  /** Before round id, untimed: anything stored beforehand; returns the body to post. */
  prepare: (id: string) => Promise<string>;
  /** The handler's work for round id (the floor: its one INSERT, then the promote); throws to refuse. */
  handle: (id: string, body: unknown) => Promise<void>;
  /** The gate job's work for round id before the next job may run. */
  gateWork: (id: string) => Promise<void>;
}

export interface FloorMeasured extends Measured {
  /** The handler's one INSERT, a statement and its commit: the unit cutter's extra statements are counted in. */
  insertMs: number[];
}

/** The queues each variant uses, so the bench can remove them afterwards. */
export function floorQueues(variant: FloorVariant): [string, string] {
  return [`${variant}-gate`, `${variant}-next`];
}

/** The floor's path (and the bound's, which adds the gate's check and write). */
function floorPath(h: Harness, gate: Queue, variant: 'floor' | 'gate-bound', body: string, measured: FloorMeasured): FloorPath {
  return {
    prepare: () => Promise.resolve(body),
    handle: async (id, parsed) => {
      const t = performance.now();
      await h.pool.query('INSERT INTO bench_floor (id, body) VALUES ($1, $2)', [id, JSON.stringify(parsed)]);
      measured.insertMs.push(performance.now() - t);
      await (await gate.getJob(`${id}.gate`))?.promote();
    },
    gateWork:
      variant === 'floor'
        ? () => Promise.resolve()
        : async (id) => {
            // The stored row checked and consumed in one statement, whose commit waits for the WAL flush.
            await h.pool.query('INSERT INTO bench_floor_consumed (id) SELECT id FROM bench_floor WHERE id = $1 AND body IS NOT NULL', [id]);
          },
  };
}

/**
 * Opens one variant: its tables, its express server (which also answers
 * /refuse with a bare 403), its two workers; each round posts what the
 * variant prepared. body: the floor's fixed body, the size of an envelope.
 */
export async function openFloor(h: Harness, body: string, variant: FloorVariant): Promise<Side<FloorMeasured>> {
  await h.pool.query('CREATE TABLE IF NOT EXISTS bench_floor (id text PRIMARY KEY, body text NOT NULL)');
  await h.pool.query('CREATE TABLE IF NOT EXISTS bench_floor_consumed (id text PRIMARY KEY REFERENCES bench_floor (id))');
  const [gateName, nextName] = floorQueues(variant);
  const measured: FloorMeasured = { ms: [], answered: [], insertMs: [] };
  const redis = createRedis(h.cfg.REDIS_URL, 'worker');
  const gate = new Queue(gateName, { connection: redis, prefix: h.prefix });
  const path = variant === 'design-bound' ? await designBoundPath(h, gate) : floorPath(h, gate, variant, body, measured);
  const app = express();
  app.post('/floor/:id', express.json({ limit: 16 * 1024 }), async (req, res) => {
    try {
      await path.handle(String(req.params['id']), req.body as unknown);
      res.status(201).json({ ok: true });
    } catch {
      res.status(403).json({ error: { code: 'NO', message: 'no' } });
    }
  });
  app.post('/refuse', express.json({ limit: 16 * 1024 }), (_req, res) => {
    res.status(403).json({ error: { code: 'NO', message: 'no' } });
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const active = new Map<string, (t: number) => void>();
  const workers = [
    new Worker(gateName, async (job: Job<{ id: string }>) => {
      await path.gateWork(job.data.id);
      return {};
    }, { connection: connection(h.cfg), prefix: h.prefix }),
    new Worker(nextName, (job: Job<{ id: string }>) => {
      active.get(job.data.id)?.(performance.now());
      return Promise.resolve({});
    }, { connection: connection(h.cfg), prefix: h.prefix }),
  ];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const flows = new FlowProducer({ connection: redis, prefix: h.prefix });
  let i = 0;
  return {
    measured,
    round: async () => {
      const id = `${variant}-${process.pid}-${i++}`;
      await flows.add({
        name: 'next', queueName: nextName, data: { id }, opts: { jobId: `${id}.next` },
        children: [{ name: 'gate', queueName: gateName, data: { id }, opts: { jobId: `${id}.gate`, delay: WINDOW_MS } }],
      });
      await untilDelayed(gate, `${id}.gate`);
      const posted = await path.prepare(id);
      const became = new Promise<number>((resolve) => active.set(id, resolve));
      const t0 = performance.now();
      if ((await post(`${base}/floor/${id}`, posted)) !== 201) throw new Error(`${variant} refused`);
      measured.answered.push(performance.now() - t0);
      measured.ms.push((await became) - t0);
    },
    refusedPerS: (count) => throughput(`${base}/refuse`, body, count, 16, 403),
    close: async () => {
      await flows.close();
      await Promise.all(workers.map((w) => w.close()));
      await gate.close();
      redis.disconnect();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
