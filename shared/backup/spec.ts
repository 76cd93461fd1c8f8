import { resolve } from 'node:path';
import { z } from 'zod';
import type { Config } from '../config.js';
import { BackupRunnerError } from './errors.js';

/** Everything the backup runner needs to know, checked once. */
export interface BackupSpec {
  /** postgres://user[:password]@host:port/database; the password never reaches a log or an argv. */
  databaseUrl: string;
  /** The recipient's primary key fingerprint: 40 hex digits, upper case. */
  recipientFpr: string;
  /** Absolute path of the directory the backup and its manifest are written to. */
  outDir: string;
  /** The keyring directory gpg uses; undefined means gpg's own default. */
  gnupgHome: string | undefined;
}

const postgresUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.pathname.length > 1;
    } catch {
      return false;
    }
  },
  { error: 'must be a URL of the form postgres://user[:password]@host:port/database' },
);

const specSchema = z.object({
  databaseUrl: postgresUrl,
  recipientFpr: z
    .string({ error: 'must be set to the 40-hex-digit fingerprint of the primary key' })
    .regex(/^[0-9A-Fa-f]{40}$/, { error: 'must be a 40-hex-digit OpenPGP fingerprint (no spaces)' })
    .transform((v) => v.toUpperCase()),
  outDir: z
    .string({ error: 'must be set to the backup directory' })
    .min(1, { error: 'must be set to the backup directory' })
    .transform((v) => resolve(v)),
  gnupgHome: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? undefined : resolve(v))),
});

type Field = keyof BackupSpec;

/** Builds a spec; throws BACKUP_SPEC_INVALID naming the first bad field (in the caller's words). */
function parseSpec(input: unknown, label: (field: Field) => string): BackupSpec {
  const result = specSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path[0];
  const name = typeof field === 'string' && field in specSchema.shape ? label(field as Field) : 'backup spec';
  const message = issue?.code === 'invalid_type' && issue.input === undefined ? 'is not set' : (issue?.message ?? 'is invalid');
  throw new BackupRunnerError('BACKUP_SPEC_INVALID', `${name} ${message}`, { field: name });
}

/** A spec from any object with the BackupSpec fields (the run's phase passes one from job data). */
export function backupSpecFrom(input: unknown): BackupSpec {
  return parseSpec(input, (field) => field);
}

const ENV_NAMES: Record<Field, string> = {
  databaseUrl: 'DATABASE_URL',
  recipientFpr: 'BACKUP_GPG_FPR',
  outDir: 'BACKUP_DIR',
  gnupgHome: 'GNUPGHOME',
};

/** The spec of this process's configuration; errors name the environment variable. */
export function backupSpecFromConfig(cfg: Config, overrides: { outDir?: string | undefined } = {}): BackupSpec {
  return parseSpec(
    {
      databaseUrl: cfg.DATABASE_URL,
      recipientFpr: cfg.BACKUP_GPG_FPR,
      outDir: overrides.outDir ?? cfg.BACKUP_DIR,
      gnupgHome: cfg.GNUPGHOME,
    },
    (field) => (field === 'outDir' && overrides.outDir !== undefined ? '--out' : ENV_NAMES[field]),
  );
}
