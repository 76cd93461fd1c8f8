import type { ErrorRequestHandler, Response } from 'express';
import { httpStatusFor, isRefusal } from '../shared/approval/refusals.js';
import type { Logger } from '../shared/logger.js';

/**
 * How the board answers an error: always `{"error": {"code", "message"}}`,
 * the status from the one table in shared/approval/refusals.ts, never a
 * stack trace. Anything that is not a known refusal is a 500 INTERNAL and
 * is logged (without the request body, which may carry a signature).
 */

/** Sends the error body of DESIGN §5. */
export function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

/** body-parser's error types → our codes (it runs before any handler of ours). */
const BODY_ERRORS: Record<string, { code: string; message: string }> = {
  'entity.too.large': { code: 'BODY_TOO_LARGE', message: 'the body is larger than 16 KiB' },
  'entity.parse.failed': { code: 'BODY_NOT_JSON', message: 'the body is not valid JSON' },
  'charset.unsupported': { code: 'CONTENT_TYPE_UNSUPPORTED', message: 'the body must be UTF-8 JSON' },
  'encoding.unsupported': { code: 'CONTENT_TYPE_UNSUPPORTED', message: 'the body must not be compressed' },
  'request.aborted': { code: 'BODY_NOT_JSON', message: 'the request was aborted before its body arrived' },
  'request.size.invalid': { code: 'BODY_NOT_JSON', message: 'the body is shorter or longer than its Content-Length' },
};

/** The app's last middleware: maps every error to its status and code. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const type = (err as { type?: unknown } | null)?.type;
    const body = typeof type === 'string' ? BODY_ERRORS[type] : undefined;
    if (body) {
      sendError(res, httpStatusFor(body.code), body.code, body.message);
      return;
    }
    if (isRefusal(err)) {
      sendError(res, httpStatusFor(err.code), err.code, err.message);
      return;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    log.error({ err: { message: e.message, stack: e.stack }, method: req.method, path: req.path }, 'request failed');
    sendError(res, 500, 'INTERNAL', 'internal error; see the board log');
  };
}
