import { ident, type Pool, type PoolClient } from '../db/pool.js';
import type { CorpusFingerprint } from '../jobs/results.js';

/**
 * Table fingerprints for readiness: a row count and a content hash (md5 over
 * the per-row md5 of each row's text form, in order). Two equal fingerprints
 * mean the table's rows are the same, byte for byte. (A run's own proof reads
 * the database's record of writes instead: shared/runs/writes.ts.)
 */

type Db = Pool | PoolClient;

/** Every table of both governed schemas, for the readiness check. */
export async function listGovernedTables(db: Db): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('public', 'cutter_governance') AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  return result.rows.map((r) => r.name);
}

/**
 * Fingerprint of any governed table by name, for readiness. The name must
 * come from listGovernedTables (the catalog), never from input.
 */
export async function fingerprintTable(db: Db, qualifiedName: string): Promise<CorpusFingerprint> {
  const [schema, name] = qualifiedName.split('.');
  const { rows } = await db.query<{ rows: number; hash: string }>(
    `SELECT count(*)::bigint AS rows, md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) AS hash
       FROM ${ident(schema ?? '')}.${ident(name ?? '')} t`,
  );
  return { table: qualifiedName, rows: rows[0]?.rows ?? 0, hash: rows[0]?.hash ?? '' };
}
