import { userInfo } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { CLUSTER_URL_FORM, isClusterUrl, parseClusterUrl } from './redis-url.js';

/**
 * The whole environment contract of DESIGN §6 in one schema. Parsed once per
 * process; every command gets the same typed object or stops with exit 2.
 */

const strictBoolean = z
  .enum(['true', 'false', '1', '0'], { error: 'must be one of true, false, 1, 0' })
  .transform((v) => v === 'true' || v === '1');

/** The parsed URL, or null for text that is not one (a refinement must never throw). */
function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/** True for an absolute URL of one of these protocols ('https:' …). */
function hasProtocol(value: string, protocols: readonly string[]): boolean {
  return protocols.includes(parseUrl(value)?.protocol ?? '');
}

const urlWithProtocols = (protocols: readonly string[], form: string) =>
  z.string().refine((value) => hasProtocol(value, protocols), { error: `must be a URL of the form ${form}` });

const port = z.coerce
  .number({ error: 'must be a port number 1-65535' })
  .int({ error: 'must be a port number 1-65535' })
  .min(1, { error: 'must be a port number 1-65535' })
  .max(65535, { error: 'must be a port number 1-65535' });

// A list is refused whole for one bad entry; the entry is named by its place,
// never echoed: a chat tool's webhook URL carries its secret in the path.
const webhookUrls = z
  .string()
  .optional()
  .transform((v) => (v ?? '').split(',').map((u) => u.trim()).filter((u) => u !== ''))
  .superRefine((urls, ctx) => {
    urls.forEach((url, i) => {
      if (!hasProtocol(url, ['http:', 'https:'])) ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of http(s) URLs; entry ${i + 1} is not one` });
      else if (urls.indexOf(url) !== i) ctx.addIssue({ code: 'custom', message: `lists entry ${i + 1} twice` });
    });
  });

// Standard Webhooks: whsec_ then the base64 of 24 to 64 random bytes.
const webhookSecret = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v))
  .refine(
    (v) => {
      if (v === undefined) return true;
      const b64 = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(v)?.[1];
      const bytes = b64 === undefined ? 0 : Buffer.from(b64, 'base64').length;
      return bytes >= 24 && bytes <= 64;
    },
    { error: 'must be whsec_ followed by the base64 of 24 to 64 random bytes (Standard Webhooks form)' },
  );

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

export const configSchema = z.object({
  // One Redis, or a Redis Cluster named by its seed nodes (shared/redis-url.ts).
  REDIS_URL: z
    .string()
    .superRefine((value, ctx) => {
      if (!isClusterUrl(value)) {
        if (!hasProtocol(value, ['redis:', 'rediss:'])) ctx.addIssue({ code: 'custom', message: `must be a URL of the form redis://host:port[/db], or ${CLUSTER_URL_FORM} for a Redis Cluster` });
        return;
      }
      const cluster = parseClusterUrl(value);
      if (!cluster.ok) ctx.addIssue({ code: 'custom', message: `must be of the form ${CLUSTER_URL_FORM} for a Redis Cluster: it ${cluster.reason}` });
    })
    .default('redis://127.0.0.1:6379'),
  DATABASE_URL: urlWithProtocols(
    ['postgres:', 'postgresql:'],
    'postgres://user@host:port/database (user:password@ when the login needs a password)',
  )
    .refine((v) => (parseUrl(v)?.pathname.length ?? 2) > 1, { error: 'must name a database in its path' })
    .default('postgres://postgres:postgres@127.0.0.1:5432/cutter'),
  CUTTER_QUEUE_PREFIX: z
    .string()
    .regex(/^(\{[A-Za-z0-9_.-]+\}|[A-Za-z0-9_.-]+)$/, {
      error: 'must be letters, digits, _ . - (optionally wrapped in {} as a Redis Cluster hash tag)',
    })
    .default('cutter'),
  BACKUP_GPG_FPR: z
    .string()
    .regex(/^[0-9A-Fa-f]{40}$/, { error: 'must be a 40-hex-digit OpenPGP fingerprint' })
    .transform((v) => v.toUpperCase())
    .optional(),
  BACKUP_DIR: optionalText,
  GNUPGHOME: optionalText,
  SOVEREIGN_KEYS: optionalText,
  SOVEREIGN_QUORUM: z.coerce
    .number({ error: 'must be a whole number ≥ 1' })
    .int({ error: 'must be a whole number ≥ 1' })
    .min(1, { error: 'must be a whole number ≥ 1' })
    .default(1),
  CUTTER_EXEC_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, {
      error: 'must be a lowercase PostgreSQL role name (letters, digits, _; at most 63)',
    })
    .default('cutter_exec'),
  CUTTER_OPERATOR: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, {
      error: 'must be a name of letters, digits, . _ @ - (at most 128)',
    })
    .optional(),
  BOARD_PORT: port.default(3000),
  // An address or host name only: the port is BOARD_PORT's.
  BOARD_HOST: z
    .string()
    .regex(/^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|[0-9A-Fa-f:]+)$/, { error: 'must be an address or host name to listen on, e.g. 127.0.0.1 or 0.0.0.0' })
    .default('127.0.0.1'),
  BOARD_USER: optionalText,
  BOARD_PASSWORD: optionalText,
  CUTTER_API_URL: urlWithProtocols(['http:', 'https:'], 'http(s)://host:port').default(
    'http://127.0.0.1:3000',
  ),
  CUTTER_BOARD_URL: urlWithProtocols(['http:', 'https:'], 'http(s)://host[:port]').optional(),
  CUTTER_WEBHOOK_URLS: webhookUrls,
  CUTTER_WEBHOOK_SECRET: webhookSecret,
  CUTTER_ALLOW_VOLATILE_REDIS: strictBoolean.default(false),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
  LOG_FORMAT: z
    .enum(['json', 'pretty'], { error: 'must be json or pretty' })
    .optional(),
}).superRefine((cfg, ctx) => {
  // BullMQ runs each command on one node: a queue's keys, and a run's flow across queues, must share one hash slot.
  if (isClusterUrl(cfg.REDIS_URL) && !/^\{.+\}$/.test(cfg.CUTTER_QUEUE_PREFIX)) {
    ctx.addIssue({
      code: 'custom',
      path: ['CUTTER_QUEUE_PREFIX'],
      message: `must be a hash tag such as {${cfg.CUTTER_QUEUE_PREFIX}} when REDIS_URL names a Redis Cluster: every key of every phase queue must hash to one slot, as a run's flow spans the queues`,
    });
  }
  if (cfg.CUTTER_WEBHOOK_URLS.length > 0 && cfg.CUTTER_WEBHOOK_SECRET === undefined) {
    ctx.addIssue({ code: 'custom', path: ['CUTTER_WEBHOOK_SECRET'], message: 'is required when CUTTER_WEBHOOK_URLS is set (whsec_ followed by base64)' });
  }
});

type RawConfig = z.output<typeof configSchema>;

export type Config = Omit<RawConfig, 'CUTTER_OPERATOR' | 'CUTTER_BOARD_URL'> & {
  CUTTER_OPERATOR: string;
  /** Where people open run pages (links in notifications); CUTTER_API_URL when unset. */
  CUTTER_BOARD_URL: string;
};

/** Parses an environment; throws ConfigError naming the first bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = String(issue?.path[0] ?? 'environment');
    throw new ConfigError(variable, `${variable} ${issue?.message ?? 'is invalid'}`);
  }
  const operator = result.data.CUTTER_OPERATOR ?? safeUserName();
  const board = (result.data.CUTTER_BOARD_URL ?? result.data.CUTTER_API_URL).replace(/\/+$/, '');
  return { ...result.data, CUTTER_OPERATOR: operator, CUTTER_BOARD_URL: board };
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'operator';
  }
}

let cached: Config | undefined;

/** The process's configuration, parsed from process.env on first use. */
export function config(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
