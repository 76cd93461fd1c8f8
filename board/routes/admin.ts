import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler, type Router } from 'express';
import { PHASES, type Phase } from '../../shared/jobs/catalog.js';
import { basicAuth } from '../auth.js';
import type { BoardDeps } from '../deps.js';
import { sendError } from '../errors.js';

/**
 * What each queue's jobs do, shown above its jobs. The gate's matters most:
 * Bull Board shows a delayed job as "will run at <time>", which for the
 * gate reads like a scheduled execution and is the opposite.
 */
const QUEUE_DESCRIPTIONS: Record<Phase, string> = {
  precheck: '1. G0: the baseline mark of the run\'s corpus, kill switch, backup selftest, workers present',
  'grant-probe': '2. the exec role holds exactly the deployment grant matrix',
  discover: '3. the snapshot parsed, validated and staged',
  cutplan: '4. the change set and its plan_sha256, frozen',
  'approval-gate':
    '5. live runs only: a delayed job waits for the sovereign\'s SG_1 approval and EXEC grant, released early when they arrive. "Will run at" is the end of the approval window: without approval the run then EXPIRES, nothing is executed',
  backup: '6. pg_dump streamed into gpg, verified',
  execute: '7. the plan applied once, behind the kill switch (dry run: rehearsed and rolled back)',
  verify: '8. G8: since the baseline only the run\'s apply wrote its corpus, exactly the plan (dry run: nothing wrote it)',
};

/** Where Bull Board lives. */
export const ADMIN_BASE = '/admin/queues';

/**
 * Defence in depth behind readOnlyMode: promote, retry, add, clean, pause
 * and every other write of Bull Board is a non-GET request, and each of them
 * once bypassed a gate (FIELD-NOTES). Refusing them here keeps the board
 * read-only even if a Bull Board upgrade changed what readOnlyMode covers.
 */
const refuseWrites: RequestHandler = (req, res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') {
    next();
    return;
  }
  res.setHeader('Allow', 'GET, HEAD');
  sendError(res, 405, 'BOARD_READ_ONLY', 'the board is read-only: jobs cannot be changed from it');
};

type RenderCallback = (err: Error | null, html?: string) => void;
type Engine = (path: string, options: object, callback: RenderCallback) => void;

/** Stylesheets and fonts Bull Board's page would fetch from another host. */
const OUTSIDE_LINK = /<link\b[^>]*\bhref="https?:\/\/[^"]*"[^>]*>/g;

/**
 * Bull Board's page links a web font on fonts.googleapis.com: a board on a
 * network without the internet waits on it, and every page view tells a
 * third party who looks at the queues. The page is rendered without that
 * link (its fallback fonts serve), and the CSP (board/http.ts) would refuse
 * it anyway.
 */
function servePageWithoutOutsideHosts(boardApp: Express): void {
  const engines = (boardApp as unknown as { engines: Record<string, Engine | undefined> }).engines;
  const render = engines['.ejs'];
  if (!render) throw new Error('Bull Board registered no page engine: its express adapter changed');
  boardApp.engine('ejs', (path, options, callback) => {
    render(path, options, (err, html) => callback(err, html?.replace(OUTSIDE_LINK, '')));
  });
}

/** Bull Board, read-only, behind HTTP basic auth, showing every phase queue. */
export function adminRouter(deps: BoardDeps): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_BASE);
  createBullBoard({
    // In phase order (sortQueues: false below), each saying what its jobs do.
    queues: PHASES.map((p) => new BullMQAdapter(deps.queues[p], { readOnlyMode: true, allowRetries: false, description: QUEUE_DESCRIPTIONS[p] })),
    // @bull-board/express 9.10.1 brings its own nested @bull-board/api 9.10.1, whose
    // private fields make the two BaseAdapter types nominally different; the
    // adapter only calls setQueues/setViewsPath/... which match at runtime.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'cutter', sortQueues: false } },
  });
  servePageWithoutOutsideHosts(serverAdapter.getRouter() as Express);
  const router = express.Router();
  router.use(ADMIN_BASE, basicAuth(deps.credentials), refuseWrites, serverAdapter.getRouter() as Router);
  return router;
}
