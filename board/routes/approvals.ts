import express, { type RequestHandler, type Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import { submitDecision } from '../../shared/stop/reject.js';
import type { BoardDeps } from '../deps.js';
import { sendError } from '../errors.js';

/**
 * POST /runs/:runId/approvals (DESIGN §5). Guards in the order a hostile or
 * clumsy client meets them: the rate limit, the content type, the 16 KiB
 * limit (body-parser enforces it while reading, before JSON.parse sees a
 * byte), then the approval rules in shared/approval.
 */

/** The most bytes an envelope may have. */
export const APPROVAL_BODY_LIMIT = 16 * 1024;

const requireJson: RequestHandler = (req, res, next) => {
  if (req.is('application/json') !== 'application/json') {
    sendError(res, 415, 'CONTENT_TYPE_UNSUPPORTED', 'send the envelope as Content-Type: application/json');
    return;
  }
  next();
};

/** The approvals router. */
export function approvalsRouter(deps: BoardDeps): Router {
  const router = express.Router();
  const limiter = rateLimit({
    windowMs: deps.options.approvalRateLimit.windowMs,
    limit: deps.options.approvalRateLimit.limit,
    // draft-7's RateLimit header: draft-8's also names a partition key, a sha256 per request.
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, res) => sendError(res, 429, 'RATE_LIMITED', 'too many approval requests from this address; wait and retry'),
  });
  router.post(
    '/runs/:runId/approvals',
    limiter,
    requireJson,
    express.json({ limit: APPROVAL_BODY_LIMIT, type: 'application/json', strict: true }),
    async (req, res) => {
      const runId = String(req.params['runId']);
      const answer = await submitDecision(deps.approvals, runId, req.body as unknown);
      res.status(201).json(answer);
    },
  );
  return router;
}
