import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ident } from '../db/pool.js';

/**
 * Table fingerprints: the exact row count and an order-independent hash of
 * every row's content, per table. Computed in the source inside the very
 * snapshot pg_dump reads, and again after a restore, they prove the restore
 * holds the same data without trusting either tool.
 */
export interface DumpFingerprint {
  /** schema.table */
  name: string;
  rows: number;
  /** How each row was hashed: its columns' own hash functions ('record'), or its text form ('text'). */
  hash: 'record' | 'text';
  /** sha256 hex over the row count and the sum of every row's 64-bit hash. */
  content_hash: string;
}

/**
 * The fingerprints are computed while pg_dump runs, so they must be cheap.
 * hash_record_extended hashes each column with its type's own hash function,
 * without formatting the row as text: about the cost of count(*). It is used
 * only where every column has a type whose hash depends on the value alone
 * (an enum's hash, for one, depends on OIDs a restore changes), with a
 * deterministic collation; other tables hash their rows' text form with
 * hashtextextended. Both are PostgreSQL's own 64-bit hashes, the ones hash
 * partitioning relies on, so they stay the same across major versions. They
 * detect a restore that lost or changed rows; tampering with the file is the
 * sha256's and gpg's job, not this one's.
 */
export const FINGERPRINT_METHOD =
  'per table: count(*) and the order-independent sum of a 64-bit hash of every row ' +
  '(hash_record_extended(row, 0) where every column type hashes by value, else hashtextextended(row text, 0)), hashed with sha256';

const BY_VALUE_TYPES = [
  'smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'boolean',
  'text', 'character varying', 'character', 'name', '"char"', 'bytea', 'uuid', 'jsonb', 'oid',
  'date', 'time without time zone', 'timestamp without time zone', 'timestamp with time zone', 'interval',
  'inet', 'cidr',
];

/**
 * The text form of a row depends on session settings (time zone, date style,
 * float digits); fixing them makes source and restore comparable wherever
 * each runs. SET LOCAL keeps them inside the caller's transaction.
 */
const STABLE_OUTPUT = [
  "SET LOCAL TIME ZONE 'UTC'",
  "SET LOCAL datestyle = 'ISO, YMD'",
  "SET LOCAL intervalstyle = 'postgres'",
  'SET LOCAL extra_float_digits = 3',
  "SET LOCAL bytea_output = 'hex'",
];

/**
 * Ordinary tables whose rows pg_dump writes (not system, not temporary, not
 * members of an extension, which pg_dump leaves to the extension), and
 * whether every column hashes by value (arrays by their element type).
 */
const LIST_TABLES = `
  SELECT n.nspname AS schema, c.relname AS name,
         NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
             LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              AND (format_type(coalesce(e.oid, t.oid), NULL) <> ALL ($1::text[])
                   OR NOT coalesce(co.collisdeterministic, true))
         ) AS by_value
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r'
     AND c.relpersistence <> 't'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\\_toast%'
     AND n.nspname NOT LIKE 'pg\\_temp%'
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
   ORDER BY 1, 2`;

/**
 * Fingerprints every table, inside the caller's open transaction (so a
 * REPEATABLE READ transaction that exported pg_dump's snapshot sees exactly
 * what pg_dump sees). `methods` forces the hash per table, so a restore is
 * hashed the way the manifest's source was.
 */
export async function fingerprintTables(
  client: pg.Client | pg.PoolClient,
  options: {
    methods?: ReadonlyMap<string, 'record' | 'text'> | undefined;
    /** Only these tables (schema.table); every table when absent. */
    only?: ReadonlySet<string> | undefined;
  } = {},
): Promise<DumpFingerprint[]> {
  for (const statement of STABLE_OUTPUT) await client.query(statement);
  const tables = await client.query<{ schema: string; name: string; by_value: boolean }>(LIST_TABLES, [BY_VALUE_TYPES]);
  const out: DumpFingerprint[] = [];
  for (const t of tables.rows) {
    const name = `${t.schema}.${t.name}`;
    if (options.only && !options.only.has(name)) continue;
    const hash = options.methods?.get(name) ?? (t.by_value ? 'record' : 'text');
    const rowHash = hash === 'record' ? 'hash_record_extended(r.*, 0)' : 'hashtextextended(ROW(r.*)::text, 0)';
    // Identifiers come from the catalog and are quoted once; no input reaches this SQL.
    const { rows } = await client.query<{ rows: string; sum: string }>(
      `SELECT count(*)::text AS rows, coalesce(sum(${rowHash}::numeric), 0)::text AS sum FROM ONLY ${ident(t.schema)}.${ident(t.name)} AS r`,
    );
    const count = rows[0]?.rows ?? '0';
    out.push({
      name,
      rows: Number(count),
      hash,
      content_hash: createHash('sha256').update(`${count}:${rows[0]?.sum ?? '0'}`).digest('hex'),
    });
  }
  return out;
}

/** Fingerprints a whole database in a read-only snapshot of its own. */
export async function fingerprintDatabase(
  client: pg.Client,
  methods?: ReadonlyMap<string, 'record' | 'text'>,
): Promise<DumpFingerprint[]> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    return await fingerprintTables(client, { methods });
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

export interface FingerprintDiff {
  name: string;
  expected: { rows: number; content_hash: string } | null;
  actual: { rows: number; content_hash: string } | null;
}

/** Tables whose fingerprints differ (or exist on one side only). */
export function compareFingerprints(expected: DumpFingerprint[], actual: DumpFingerprint[]): FingerprintDiff[] {
  const byName = new Map(actual.map((t) => [t.name, t]));
  const diffs: FingerprintDiff[] = [];
  for (const e of expected) {
    const a = byName.get(e.name);
    byName.delete(e.name);
    if (!a || a.rows !== e.rows || a.content_hash !== e.content_hash) {
      diffs.push({
        name: e.name,
        expected: { rows: e.rows, content_hash: e.content_hash },
        actual: a ? { rows: a.rows, content_hash: a.content_hash } : null,
      });
    }
  }
  for (const a of byName.values()) diffs.push({ name: a.name, expected: null, actual: { rows: a.rows, content_hash: a.content_hash } });
  return diffs;
}
