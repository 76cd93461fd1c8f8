import { userInfo } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';

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

const urlWithProtocols = (protocols: readonly string[], form: string) =>
  z.string().refine((value) => protocols.includes(parseUrl(value)?.protocol ?? ''), { error: `must be a URL of the form ${form}` });

const port = z.coerce
  .number({ error: 'must be a port number 1-65535' })
  .int({ error: 'must be a port number 1-65535' })
  .min(1, { error: 'must be a port number 1-65535' })
  .max(65535, { error: 'must be a port number 1-65535' });

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

export const configSchema = z.object({
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:'], 'redis://host:port[/db]').default(
    'redis://127.0.0.1:6379',
  ),
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
  CUTTER_BOARD_URL: urlWithProtocols(['http:', 'https:'], 'http(s)://host[:port]').optional(),
  BOARD_USER: optionalText,
  BOARD_PASSWORD: optionalText,
  CUTTER_API_URL: urlWithProtocols(['http:', 'https:'], 'http(s)://host:port').default(
    'http://127.0.0.1:3000',
  ),
  CUTTER_ALLOW_VOLATILE_REDIS: strictBoolean.default(false),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
  LOG_FORMAT: z
    .enum(['json', 'pretty'], { error: 'must be json or pretty' })
    .optional(),
});

type RawConfig = z.output<typeof configSchema>;

export type Config = Omit<RawConfig, 'CUTTER_OPERATOR'> & { CUTTER_OPERATOR: string };

/** Parses an environment; throws ConfigError naming the first bad variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = String(issue?.path[0] ?? 'environment');
    throw new ConfigError(variable, `${variable} ${issue?.message ?? 'is invalid'}`);
  }
  const operator = result.data.CUTTER_OPERATOR ?? safeUserName();
  return { ...result.data, CUTTER_OPERATOR: operator };
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
