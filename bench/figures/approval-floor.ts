import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import express from 'express';
import { createRedis } from '../../shared/redis.js';
import { connection, post, throughput, untilDelayed, WINDOW_MS, type Harness, type Side } from '../support/approval-harness.js';

/**
 * The approval figure's floor (issue 7): a bare express handler that inserts
 * one row and promotes a delayed job, timed to the next job (its parent)
 * becoming active. The least any approval endpoint must do: keep the
 * decision durably and wake what waits on it.
 */

/** The floor's two queues, so the bench can remove them afterwards. */
export const FLOOR_QUEUES = ['floor-gate', 'floor-next'] as const;

/**
 * Opens the floor: its table, its express server (which also answers
 * /refuse with a bare 403), its two workers; each round posts body, a
 * fixed body the size of an envelope.
 */
export async function openFloor(h: Harness, body: string): Promise<Side> {
  await h.pool.query('CREATE TABLE IF NOT EXISTS bench_floor (id text PRIMARY KEY, body text NOT NULL)');
  const [gateName, nextName] = FLOOR_QUEUES;
  const measured: Side['measured'] = { ms: [], answered: [] };
  const redis = createRedis(h.cfg.REDIS_URL, 'worker');
  const gate = new Queue(gateName, { connection: redis, prefix: h.prefix });
  const app = express();
  app.post('/floor/:id', express.json({ limit: 16 * 1024 }), async (req, res) => {
    const id = String(req.params['id']);
    await h.pool.query('INSERT INTO bench_floor (id, body) VALUES ($1, $2)', [id, JSON.stringify(req.body)]);
    await (await gate.getJob(`${id}.gate`))?.promote();
    res.status(201).json({ ok: true });
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
    new Worker(gateName, () => Promise.resolve({}), { connection: connection(h.cfg), prefix: h.prefix }),
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
      const id = `floor-${process.pid}-${i++}`;
      await flows.add({
        name: 'next', queueName: nextName, data: { id }, opts: { jobId: `${id}.next` },
        children: [{ name: 'gate', queueName: gateName, data: { id }, opts: { jobId: `${id}.gate`, delay: WINDOW_MS } }],
      });
      await untilDelayed(gate, `${id}.gate`);
      const became = new Promise<number>((resolve) => active.set(id, resolve));
      const t0 = performance.now();
      if ((await post(`${base}/floor/${id}`, body)) !== 201) throw new Error('floor refused');
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
