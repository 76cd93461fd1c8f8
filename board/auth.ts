import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Config } from '../shared/config.js';
import { CutterError } from '../shared/errors.js';
import { sendError } from './errors.js';

/** The HTTP basic credentials that open Bull Board. */
export interface BoardCredentials {
  user: string;
  password: string;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

/** Fresh random credentials for `cutter board --demo` (printed once, never stored). */
export function generateCredentials(): BoardCredentials {
  return { user: 'demo', password: randomBytes(18).toString('base64url') };
}

/**
 * The credentials the board runs with: given ones, else BOARD_USER /
 * BOARD_PASSWORD. Without either, a board bound to loopback gets random
 * ones nobody was told (Bull Board stays closed); any other bind is refused.
 */
export function resolveCredentials(cfg: Config, host: string, given?: BoardCredentials): BoardCredentials {
  if (given) return given;
  if (cfg.BOARD_USER && cfg.BOARD_PASSWORD) return { user: cfg.BOARD_USER, password: cfg.BOARD_PASSWORD };
  if (isLoopback(host)) return generateCredentials();
  throw missingCredentials();
}

/** The error `cutter board` stops with when BOARD_USER / BOARD_PASSWORD are not set. */
export function missingCredentials(): CutterError {
  return new CutterError(
    'BOARD_CREDENTIALS_MISSING',
    'set BOARD_USER and BOARD_PASSWORD (HTTP basic auth for Bull Board), or run `cutter board --demo` on 127.0.0.1',
    { kind: 'bad_input' },
  );
}

// Hashing both sides first gives equal lengths, so timingSafeEqual never
// throws and the comparison time does not reveal the secret's length.
function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/** Parses `Authorization: Basic …`; undefined when absent or malformed. */
export function parseBasic(header: string | undefined): BoardCredentials | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Middleware: 401 with a Basic challenge unless the request carries the board's credentials. */
export function basicAuth(expected: BoardCredentials): RequestHandler {
  return (req, res, next) => {
    const got = parseBasic(req.headers.authorization);
    // Both comparisons always run, so a right user name is not timed apart from a wrong one.
    const userOk = sameSecret(got?.user ?? '', expected.user);
    const passwordOk = sameSecret(got?.password ?? '', expected.password);
    if (got && userOk && passwordOk) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'Basic realm="cutter board", charset="UTF-8"');
    sendError(res, 401, 'UNAUTHENTICATED', 'Bull Board needs the BOARD_USER / BOARD_PASSWORD credentials');
  };
}
