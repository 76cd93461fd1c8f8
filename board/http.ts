import type { RequestHandler } from 'express';
import helmet from 'helmet';
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

/**
 * helmet's defaults (CSP: Bull Board needs no inline script; no sniffing,
 * frame denial …) with two changes. The https-only headers (HSTS,
 * upgrade-insecure-requests) are sent only when the board is reached over
 * TLS (CUTTER_BOARD_URL https://…, a proxy in front): over plain HTTP from
 * any host but localhost they made the browser fetch Bull Board's scripts
 * over https, which failed, and the board stayed on "Loading". And styles
 * and fonts come from the board alone, so no page asks another host for
 * anything (Bull Board's page links a web font; see routes/admin.ts).
 */
export function securityHeaders(tls: boolean): RequestHandler {
  return helmet({
    strictTransportSecurity: tls,
    contentSecurityPolicy: {
      directives: {
        'upgrade-insecure-requests': tls ? [] : null,
        'style-src': ["'self'", "'unsafe-inline'"],
        'font-src': ["'self'", 'data:'],
      },
    },
  });
}

/**
 * Request logs: one line per request when it ends, written by the board's
 * own logger (no per-request child logger: that cost about 5% of the CPU of
 * a refused approval). Only method, path (no query string), remote address
 * and status are logged: headers (Authorization, cookies) and bodies
 * (approval signatures) never reach the logger, so redaction does not
 * depend on a path list staying complete.
 */
export function requestLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const line = (): Record<string, unknown> => ({
      req: { method: req.method, path: req.originalUrl.split('?')[0], remote: req.socket.remoteAddress },
      res: { status: res.statusCode },
      responseTime: Math.round(performance.now() - started),
    });
    res.once('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      log[level](line(), 'request completed');
    });
    res.once('close', () => {
      if (!res.writableFinished) log.warn(line(), 'request aborted');
    });
    next();
  };
}
