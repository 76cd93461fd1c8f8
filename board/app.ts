import express, { type Express, type Router } from 'express';
import type { BoardDeps } from './deps.js';
import { errorHandler, sendError } from './errors.js';
import { bodyLimit, requestLog, securityHeaders } from './http.js';
import { countApprovals } from './metrics.js';
import { adminRouter } from './routes/admin.js';
import { approvalsRouter } from './routes/approvals.js';
import { opsRouter } from './routes/ops.js';
import { planRouter } from './routes/plan.js';
import { runsRouter } from './routes/runs.js';

/**
 * The board's express app: the common middleware (log, headers, body limit,
 * approval counting), then one router per concern, then a JSON 404 and the
 * error handler. To add a page or an API, write board/routes/<name>.ts
 * exporting `(deps) => Router` and add it to ROUTES.
 */
const ROUTES: ((deps: BoardDeps) => Router)[] = [opsRouter, adminRouter, approvalsRouter, runsRouter, planRouter];

/** Builds the app (it opens nothing itself: the connections are in deps). */
export function createBoardApp(deps: BoardDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // Answers of routes are not cached (Bull Board's static files keep their own ETags): none is hashed.
  app.disable('etag');
  app.use(requestLog(deps.log));
  app.use(securityHeaders(deps.cfg.CUTTER_BOARD_URL.startsWith('https:')));
  app.use(bodyLimit);
  app.use(countApprovals(deps.metrics));
  for (const route of ROUTES) app.use(route(deps));
  app.use((req, res) => sendError(res, 404, 'NOT_FOUND', `no route ${req.method} ${req.path}`));
  app.use(errorHandler(deps.log));
  return app;
}
