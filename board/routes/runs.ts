import express, { type Request, type Router } from 'express';
import { approvalSummary } from '../../shared/approval/summary.js';
import { loadVerifyResult } from '../../shared/runs/checks.js';
import { buildReport } from '../../shared/runs/report.js';
import { getRun } from '../../shared/runs/store.js';
import { RUN_STATUSES } from '../../shared/runs/status.js';
import { runView } from '../../shared/runs/view.js';
import type { BoardDeps } from '../deps.js';
import { sendError } from '../errors.js';
import { html, page } from '../pages/html.js';
import { RUN_PAGE_PLAN_LIMIT, type PlanListing } from '../pages/plan-section.js';
import { runListPage } from '../pages/run-list.js';
import { markdownToHtml } from '../pages/markdown.js';
import { runPage } from '../pages/run-page.js';
import { listRuns, parseRunCursor } from '../queries.js';
import { CutterError } from '../../shared/errors.js';
import { parsePlanQuery, readPlanPage } from '../../shared/plan/plan-items.js';

/**
 * The run API and run pages: one route answers JSON (DESIGN §4 keys) or
 * server-rendered HTML. JSON is the default, so `curl` and fetch() with
 * Accept: *\/* get the API; HTML only for a client that asks for it first,
 * as browsers do.
 */

/** True when the client asks for HTML before JSON (browsers do). */
export function wantsHtml(req: Request): boolean {
  // The answer depends on Accept: caches must key on it, or a browser's page is served to an API client.
  req.res?.vary('Accept');
  return req.accepts(['json', 'html']) === 'html';
}

const RUN_LIST_LIMIT = 100;
const RUN_LIST_MAX = 500;
const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The runs router: /runs, /runs/:runId, /runs/:runId/report. */
export function runsRouter(deps: BoardDeps): Router {
  const router = express.Router();

  router.get('/', (_req, res) => {
    res.redirect(302, '/runs');
  });

  router.get('/runs', async (req, res) => {
    const query = (name: string) => (typeof req.query[name] === 'string' && req.query[name] !== '' ? req.query[name] : undefined);
    const status = query('status');
    if (status !== undefined && !(RUN_STATUSES as readonly string[]).includes(status)) {
      sendError(res, 400, 'STATUS_INVALID', `status must be one of ${RUN_STATUSES.join(', ')}`);
      return;
    }
    const target = query('target');
    if (target !== undefined && !TARGET_NAME.test(target)) {
      sendError(res, 400, 'TARGET_INVALID', 'target must be a target name (letters, digits, . _ -; at most 64)');
      return;
    }
    const afterText = query('after');
    const after = afterText === undefined ? undefined : parseRunCursor(afterText);
    if (after === null) {
      sendError(res, 400, 'CURSOR_INVALID', 'after must be the `next` cursor of a previous page');
      return;
    }
    const limitText = query('limit') ?? String(RUN_LIST_LIMIT);
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > RUN_LIST_MAX) {
      sendError(res, 400, 'LIMIT_INVALID', `limit must be a whole number from 1 to ${RUN_LIST_MAX}`);
      return;
    }
    const filters = { ...(status ? { status } : {}), ...(target ? { target } : {}) };
    const listed = await listRuns(deps.pool, { ...filters, ...(after ? { after } : {}), limit });
    if (wantsHtml(req)) {
      res.type('html').send(runListPage(listed, { ...filters, limit }));
      return;
    }
    res.json({
      runs: listed.rows.map((r) => ({
        run_id: r.run_id,
        target: r.target,
        mode: r.mode,
        status: r.status,
        phase: r.phase,
        verdict: r.verdict,
        created_utc: r.created_at.toISOString(),
        finished_utc: r.finished_at?.toISOString() ?? null,
      })),
      next: listed.next,
    });
  });

  router.get('/runs/:runId', async (req, res) => {
    const runId = String(req.params['runId']);
    const view = await runView(deps.pool, runId);
    if (!view) {
      if (wantsHtml(req)) res.status(404).type('html').send(page('No such run', html`<h1>No run ${runId}</h1>`));
      else sendError(res, 404, 'RUN_UNKNOWN', `no run ${runId}`);
      return;
    }
    const approvals = await approvalSummary(deps.pool, runId, deps.approvals.keys, deps.approvals.quorum);
    if (!wantsHtml(req)) {
      res.json({ ...view, approvals });
      return;
    }
    const [verification, stored, armed, planListing] = await Promise.all([
      loadVerifyResult(deps.pool, runId),
      getRun(deps.pool, runId),
      deps.pool.query<{ on: boolean }>('SELECT coalesce(cutter_governance.execution_enabled($1), false) AS on', [runId]),
      view.plan ? planListingOf(deps, runId, req) : undefined,
    ]);
    const report = stored?.report ?? (await buildReport(deps.pool, runId));
    res.type('html').send(
      runPage({ view, approvals, verification, report, switchOn: armed.rows[0]?.on ?? false, now: new Date(), ...(planListing ? { planListing } : {}) }),
    );
  });

  router.get('/runs/:runId/report', async (req, res) => {
    const runId = String(req.params['runId']);
    const run = await getRun(deps.pool, runId);
    if (!run) {
      sendError(res, 404, 'RUN_UNKNOWN', `no run ${runId}`);
      return;
    }
    // A run in progress has no stored report yet: build one from what is known so far.
    const report = run.report ?? (await buildReport(deps.pool, runId));
    res.vary('Accept');
    const asMarkdown = req.query['format'] === 'md' || req.accepts(['text/markdown', 'html']) !== 'html';
    if (asMarkdown) {
      if (req.query['download'] !== undefined) res.attachment(`cutter-report-${runId}.md`);
      res.type('text/markdown; charset=utf-8').send(report);
      return;
    }
    const md = `/runs/${encodeURIComponent(runId)}/report?format=md`;
    res.type('html').send(page(`Report ${runId}`, html`<p>Report of <a href="/runs/${encodeURIComponent(runId)}">${runId}</a> · <a href="${md}">as markdown</a> · <a href="${md}&amp;download=1" download>download</a></p>
<div id="report">${markdownToHtml(report)}</div>`));
  });
  return router;
}

/** The run page's page of plan units for the query string's op, key and after (a bad value is shown, not thrown). */
async function planListingOf(deps: BoardDeps, runId: string, req: Request): Promise<PlanListing> {
  const one = (name: string) => (typeof req.query[name] === 'string' ? req.query[name] : undefined);
  try {
    const query = parsePlanQuery({ op: one('op'), key: one('key'), after: one('after') }, { limit: RUN_PAGE_PLAN_LIMIT, maxLimit: RUN_PAGE_PLAN_LIMIT });
    return { query, page: await readPlanPage(deps.pool, runId, query) };
  } catch (err) {
    if (err instanceof CutterError && err.kind === 'bad_input') return { error: err.message };
    throw err;
  }
}
