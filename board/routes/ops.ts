import express, { type Router } from 'express';
import type { BoardDeps } from '../deps.js';

/** A check that does not answer within this is down: /healthz must answer within a second. */
const CHECK_TIMEOUT_MS = 700;

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function check(work: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await within(CHECK_TIMEOUT_MS, work());
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** GET /livez (the process answers), GET /healthz (Redis and Postgres answer, or 503) and GET /metrics (Prometheus text). */
export function opsRouter(deps: BoardDeps): Router {
  const router = express.Router();
  // Liveness: the process serves requests. Readiness of its dependencies is /healthz; a restart cures neither outage.
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/healthz', async (_req, res) => {
    // The board's Redis client queues commands while disconnected (BullMQ needs that), so the timeout is what notices an outage.
    const [redis, postgres] = await Promise.all([check(() => deps.redis.ping()), check(() => deps.pool.query('SELECT 1'))]);
    const ok = redis.ok && postgres.ok;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', redis, postgres });
  });
  router.get('/metrics', async (_req, res) => {
    const text = await deps.metrics.registry.metrics();
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(text);
  });
  return router;
}
