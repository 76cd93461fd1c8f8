import { pino, type Logger } from 'pino';
import { config } from './config.js';

export type { Logger } from 'pino';

/**
 * Field paths whose values never reach a log line: approval signatures, key
 * material, credentials. URLs are scrubbed separately because the secret sits
 * inside the string.
 */
export const REDACT_PATHS = [
  'signature',
  '*.signature',
  'envelope.signature',
  'privateKey',
  '*.privateKey',
  'private_key',
  '*.private_key',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'BOARD_PASSWORD',
  '*.BOARD_PASSWORD',
  'CUTTER_WEBHOOK_SECRET',
  '*.CUTTER_WEBHOOK_SECRET',
  // Webhook URLs may carry their secret in the path (chat tools' incoming webhooks).
  'CUTTER_WEBHOOK_URLS',
  '*.CUTTER_WEBHOOK_URLS',
];

/** postgres://user:secret@host → postgres://user:***@host (any scheme). */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@\s]*:)([^@\s]*)@/g, '$1***@');
}

const PRIVATE_KEY_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;

const WEBHOOK_SECRET = /whsec_[A-Za-z0-9+/=]+/g;

/** Removes credentials in URLs, private key blocks and webhook secrets from free text. */
export function redactText(text: string): string {
  return redactUrl(text).replace(PRIVATE_KEY_BLOCK, '[private key redacted]').replace(WEBHOOK_SECRET, 'whsec_[redacted]');
}

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value instanceof Error) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

/** Colour unless NO_COLOR is set to anything but the empty string (no-color.org). */
export function wantsColour(env: NodeJS.ProcessEnv): boolean {
  return (env['NO_COLOR'] ?? '') === '';
}

/** Builds a logger; JSON on stderr by default, pretty when asked or on a terminal. */
export function createLogger(options: { name?: string; level?: string; pretty?: boolean } = {}): Logger {
  const cfg = config();
  const pretty = options.pretty ?? (cfg.LOG_FORMAT ? cfg.LOG_FORMAT === 'pretty' : process.stderr.isTTY);
  return pino(
    {
      name: options.name ?? 'cutter',
      level: options.level ?? cfg.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          // Free-text messages can carry a connection string too.
          const scrubbed = args.map((a) => (typeof a === 'string' ? redactText(a) : a));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: wantsColour(process.env) } })
      : pino.destination(2),
  );
}

let root: Logger | undefined;

/** The process-wide logger. */
export function logger(): Logger {
  root ??= createLogger();
  return root;
}
