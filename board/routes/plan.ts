import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import { CutterError } from '../../shared/errors.js';
import { bodyDiff } from '../../shared/plan/body-diff.js';
import { headerLine, requirePlanHeader, streamExportLines, type PlanExportHeader } from '../../shared/plan/export.js';
import { parsePlanQuery, readPlanPage, readPlanPageWithBodies } from '../../shared/plan/plan-items.js';
import type { BoardDeps } from '../deps.js';
import { sendError } from '../errors.js';
import { html, page } from '../pages/html.js';
import { planUnitPage } from '../pages/plan-unit.js';
import { wantsHtml } from './runs.js';

/**
 * Plan review over HTTP (docs/plan-review.md), read-only like the run
 * pages: a page of items (keyset by key in byte order), the whole NDJSON
 * export, and one unit with its body diff.
 */

/** Page sizes of GET /runs/:runId/plan. */
export const API_PAGE = { limit: 100, maxLimit: 1000 };

const STATUS: Record<string, number> = { RUN_UNKNOWN: 404, PLAN_MISSING: 404, PLAN_ITEM_UNKNOWN: 404 };

/** Answers a CutterError of ours (bad filter 400, unknown run/plan/unit 404); anything else goes to the error handler. */
function refuse(req: Request, res: Response, err: unknown): boolean {
  if (!(err instanceof CutterError)) return false;
  const status = STATUS[err.code] ?? (err.kind === 'bad_input' ? 400 : 500);
  if (status === 500) return false;
  if (wantsHtml(req)) res.status(status).type('html').send(page('Plan', html`<h1>${err.message}</h1><p><code>${err.code}</code></p>`));
  else sendError(res, status, err.code, err.message);
  return true;
}

const one = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The plan router: /runs/:runId/plan, /runs/:runId/plan.ndjson, /runs/:runId/plan/<key>. */
export function planRouter(deps: BoardDeps): Router {
  const router = express.Router();

  router.get('/runs/:runId/plan', async (req, res) => {
    const runId = String(req.params['runId']);
    try {
      const q = parsePlanQuery({ op: one(req.query['op']), key: one(req.query['key']), after: one(req.query['after']), limit: one(req.query['limit']) }, API_PAGE);
      const pageOf = await readPlanPage(deps.pool, runId, q);
      // Only an empty page needs asking why: no such run, no plan yet, or nothing matches.
      if (pageOf.items.length === 0) await requirePlanHeader(deps.pool, runId);
      res.json(pageOf);
    } catch (err) {
      if (!refuse(req, res, err)) throw err;
    }
  });

  router.get('/runs/:runId/plan.ndjson', async (req, res) => {
    const runId = String(req.params['runId']);
    let header: PlanExportHeader;
    try {
      header = await requirePlanHeader(deps.pool, runId);
    } catch (err) {
      if (!refuse(req, res, err)) throw err;
      return;
    }
    const client = await deps.pool.connect();
    let broken = true;
    try {
      const lines = await streamExportLines(client, runId);
      res.type('application/x-ndjson; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="${runId.replace(/[^A-Za-z0-9._-]/g, '_')}.plan.ndjson"`);
      res.write(headerLine(header));
      await pipeline(lines, res);
      broken = false;
    } catch (err) {
      // Headers are gone: a client that went away, or a failed COPY, can only end the response.
      deps.log.warn({ err: (err as Error).message, runId }, 'plan export stopped');
      res.destroy();
    } finally {
      // A COPY stopped midway leaves the connection unusable: drop it.
      client.release(broken);
    }
  });

  router.get('/runs/:runId/plan/*key', async (req, res) => {
    const runId = String(req.params['runId']);
    const raw = (req.params as Record<string, unknown>)['key'];
    const key = Array.isArray(raw) ? raw.join('/') : String(raw);
    try {
      // The items starting with the key start with the key itself: the first one is the unit, or there is none.
      const q = parsePlanQuery({ key }, { limit: 1, maxLimit: 1 });
      const header = await requirePlanHeader(deps.pool, runId);
      const found = (await readPlanPageWithBodies(deps.pool, runId, q)).items[0];
      if (!found || found.key !== key) throw new CutterError('PLAN_ITEM_UNKNOWN', `run ${runId}'s plan has no unit ${key}`, { kind: 'bad_input' });
      const diff = bodyDiff(found);
      if (wantsHtml(req)) res.type('html').send(planUnitPage(header, found, diff));
      else res.json({ ...found, diff });
    } catch (err) {
      if (!refuse(req, res, err)) throw err;
    }
  });
  return router;
}
