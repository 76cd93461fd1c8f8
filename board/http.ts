import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Logger } from '../shared/logger.js';
import { sendError } from './errors.js';

/**
 * The middleware every request passes before a route: security headers,
 * a body limit, and one structured log line per request.
 */

/**
 * No route of the board takes a body larger than an approval envelope
 * (16 KiB, enforced again by the approval route while parsing); anything
 * announced larger is refused before it is read.
 */
export const MAX_BODY_BYTES = 16 * 1024;

/** 413 for a request whose Content-Length exceeds MAX_BODY_BYTES. */
export const bodyLimit: RequestHandler = (req, res, next) => {
  const length = Number(req.headers['content-length'] ?? 0);
  if (Number.isFinite(length) && length > MAX_BODY_BYTES) {
    res.setHeader('Connection', 'close');
    sendError(res, 413, 'BODY_TOO_LARGE', 'the body is larger than 16 KiB');
    return;
  }
  next();
};

/** helmet's defaults: CSP (Bull Board needs no inline script), no sniffing, frame denial, HSTS… */
export function securityHeaders(): RequestHandler {
  return helmet();
}

/**
 * Request logs. The serializers keep only method, path and status: headers
 * (Authorization, cookies) and bodies (approval signatures) never reach the
 * logger, so redaction does not depend on a path list staying complete.
 */
export function requestLog(log: Logger): RequestHandler {
  return pinoHttp({
    logger: log,
    quietReqLogger: true,
    serializers: {
      req: (req: { method?: string; url?: string; remoteAddress?: string }) => ({
        method: req.method,
        // The query string is dropped: nothing the board serves needs it logged.
        path: (req.url ?? '').split('?')[0],
        remote: req.remoteAddress,
      }),
      res: (res: { statusCode?: number }) => ({ status: res.statusCode }),
    },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
  });
}
