import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';
import { CutterError } from '../errors.js';
import { type LedgerRow, planHistory } from './migration-history.js';

/**
 * Numbered, append-only .sql migrations (tables, constraints, indexes, data
 * moves; functions and triggers are function files), recorded in a ledger
 * table. Each file runs in its own transaction together with its ledger row,
 * so a crash leaves it either applied and recorded or neither. The caller
 * holds the migration lock (migration-lock.ts).
 */

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
  sha256: string;
}

export interface NumberedMigrationsResult {
  applied: string[];
  alreadyApplied: number;
  /** Ledger rows moved to an amended file's new hash: "name: reason" (migration-history.ts). */
  amended: string[];
  /** Old ledger rows replaced by squashed migrations whose effects they already held, without running them. */
  squashed: { replaced: string[]; by: string[] } | null;
}

/** Reads the migration files in order; numbers may have gaps but never repeat. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const match = /^(\d{3})_[a-z0-9_]+\.sql$/.exec(name);
    if (!match) throw new CutterError('MIGRATION_NAME', `migration file ${name} is not named NNN_words.sql`);
    const sql = await readFile(new URL(name, dir), 'utf8');
    const version = Number(match[1]);
    if (files.some((f) => f.version === version)) {
      throw new CutterError('MIGRATION_NAME', `two migration files share number ${match[1]}`);
    }
    files.push({ version, name, sql, sha256: createHash('sha256').update(sql).digest('hex') });
  }
  return files;
}

/** The ledger table; the same DDL every cutter has used, so old databases already have it. */
export async function ensureLedger(client: pg.ClientBase): Promise<void> {
  await client.query('CREATE SCHEMA IF NOT EXISTS cutter_governance');
  await client.query(`CREATE TABLE IF NOT EXISTS cutter_governance.schema_migration (
      version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
}

/**
 * Carries the ledger over (migration-history.ts: amended files, squashed
 * ones) in one transaction, then applies every file the ledger lacks.
 */
export async function applyNumberedMigrations(client: pg.ClientBase, migrations: readonly MigrationFile[]): Promise<NumberedMigrationsResult> {
  await ensureLedger(client);
  const ledger = await client.query<LedgerRow>('SELECT version, name, sha256 FROM cutter_governance.schema_migration ORDER BY version');
  const plan = planHistory(ledger.rows, migrations);
  if (plan.amend.length || plan.squash) {
    await inTransaction(client, async () => {
      for (const row of plan.squash?.replaced ?? []) {
        await client.query('DELETE FROM cutter_governance.schema_migration WHERE version = $1 AND sha256 = $2', [row.version, row.sha256]);
      }
      for (const row of plan.squash?.by ?? []) {
        await client.query('INSERT INTO cutter_governance.schema_migration (version, name, sha256) VALUES ($1, $2, $3)', [
          row.version,
          row.name,
          row.sha256,
        ]);
      }
      for (const row of plan.amend) {
        await client.query('UPDATE cutter_governance.schema_migration SET sha256 = $2 WHERE version = $1', [row.version, row.sha256]);
      }
    });
  }
  const done = await client.query<{ version: number }>('SELECT version FROM cutter_governance.schema_migration');
  const doneVersions = new Set(done.rows.map((r) => r.version));
  const applied: string[] = [];
  for (const m of migrations) {
    if (doneVersions.has(m.version)) continue;
    try {
      await inTransaction(client, async () => {
        await client.query(m.sql);
        await client.query('INSERT INTO cutter_governance.schema_migration (version, name, sha256) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.sha256,
        ]);
      });
    } catch (err) {
      throw new CutterError('MIGRATION_FAILED', `migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
    }
    applied.push(m.name);
  }
  return {
    applied,
    alreadyApplied: doneVersions.size,
    amended: plan.amend.map((a) => `${a.name}: ${a.reason}`),
    squashed: plan.squash && { replaced: plan.squash.replaced.map((r) => r.name), by: plan.squash.by.map((r) => r.name) },
  };
}

async function inTransaction(client: pg.ClientBase, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    // A dead connection fails the ROLLBACK too; the first error is the one to tell.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
