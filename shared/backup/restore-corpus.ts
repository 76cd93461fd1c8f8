import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { ident, type PoolClient } from '../db/pool.js';
import { CORPUS_TABLES } from '../runs/writes.js';
import { chainDivergence, readChain } from './chain-prefix.js';
import { dropDatabaseAt, ensureDatabase } from './database.js';
import { BackupRunnerError } from './errors.js';
import { compareFingerprints, fingerprintTables, type DumpFingerprint } from './fingerprint.js';
import type { BackupManifest } from './manifest.js';
import { connect, databaseName } from './pgtools.js';
import { settleRestore, type RestoreSettlement } from './settle.js';

/**
 * An in-place restore (`--force` into a database that holds cutter's
 * schema) puts back the corpus only: its three tables as the backup holds
 * them. The governance tables, the execution ledger and the audit chain stay
 * as they are, so the database keeps knowing every run, every applied plan
 * and every event, the cut's included, and the restore becomes one more
 * event in that record.
 *
 * The backup is first restored whole into a scratch database beside the
 * target (checked, never the live one), and must come from the target's own
 * history: its audit chain and the target's agree on every row both hold.
 * Then one transaction on the target swaps the corpus tables' rows for the
 * scratch copy's, checks each table against the manifest's fingerprint,
 * settles the governance side (settle.ts) and commits; anything failing
 * before the commit leaves the target as it was.
 */

/** Tables in the order their rows go in (information_unit first: the others refer to it). */
const LOAD_ORDER = CORPUS_TABLES;

export interface CorpusRestore {
  /** The corpus tables as restored, fingerprinted the way the manifest's source was. */
  tables: DumpFingerprint[];
  settlement: RestoreSettlement;
}

export async function restoreCorpusInPlace(args: {
  file: string;
  manifest: BackupManifest;
  target: pg.Client;
  targetUrl: string;
  /** Restores the backup whole into a new database (restore.ts). */
  restoreWhole: (url: string) => Promise<void>;
}): Promise<CorpusRestore> {
  const { file, manifest, target, targetUrl } = args;
  const missing = LOAD_ORDER.filter((t) => !manifest.tables.some((m) => m.name === t));
  if (missing.length > 0) {
    throw new BackupRunnerError('RESTORE_NOT_A_CORPUS', `${file} holds no ${missing.join(', ')}: it is not a backup of a cutter database, nothing was restored`);
  }
  const scratchUrl = siblingUrl(targetUrl, `cutter_restore_${randomBytes(6).toString('hex')}`);
  if (!(await ensureDatabase(scratchUrl))) throw new Error(`scratch database ${databaseName(scratchUrl)} already existed`);
  let scratch: pg.Client | undefined;
  try {
    await args.restoreWhole(scratchUrl);
    scratch = await connect(scratchUrl, 'cutter-restore');
    const divergence = await chainDivergence(target, await readChain(scratch));
    if (divergence) {
      throw new BackupRunnerError(
        'RESTORE_CHAIN_DIVERGED',
        `${file} is not a backup of ${databaseName(targetUrl)}'s own history: ${divergence.reason}; nothing was restored`,
      );
    }
    return await swapCorpus({ file, manifest, target, scratch });
  } finally {
    // The scratch copy is plaintext corpus: it never outlives the restore.
    await scratch?.end().catch(() => undefined);
    await dropDatabaseAt(scratchUrl).catch(() => undefined);
  }
}

async function swapCorpus(args: { file: string; manifest: BackupManifest; target: pg.Client; scratch: pg.Client }): Promise<CorpusRestore> {
  const { file, manifest, target, scratch } = args;
  const columns: string[][] = [];
  for (const table of LOAD_ORDER) columns.push(await copyColumns(table, scratch, target));
  await target.query('BEGIN');
  try {
    // Every reader and writer of the corpus waits for the commit; a run's execute holding rows is waited for.
    await target.query(`LOCK TABLE ${LOAD_ORDER.map(quoted).join(', ')} IN ACCESS EXCLUSIVE MODE`);
    await target.query(`TRUNCATE ${LOAD_ORDER.map(quoted).join(', ')}`);
    for (const [i, table] of LOAD_ORDER.entries()) {
      const list = (columns[i] ?? []).map(ident).join(', ');
      await pipeline(
        scratch.query(copyStreams.to(`COPY ${quoted(table)} (${list}) TO STDOUT`)),
        target.query(copyStreams.from(`COPY ${quoted(table)} (${list}) FROM STDIN`)),
      );
    }
    // Ids are never handed out twice: governance records name units created after the backup.
    for (const table of ['public.information_unit', 'public.iu_lifecycle_log']) {
      await target.query(
        `SELECT setval(s.seq, greatest(coalesce(pg_sequence_last_value(s.seq), 1), (SELECT coalesce(max(id), 1) FROM ${quoted(table)})))
           FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass AS seq) s`,
        [table],
      );
    }
    const methods = new Map(manifest.tables.map((t) => [t.name, t.hash]));
    const tables = await fingerprintTables(target, { methods, only: new Set(LOAD_ORDER) });
    const expected = manifest.tables.filter((t) => (LOAD_ORDER as readonly string[]).includes(t.name));
    const mismatches = compareFingerprints(expected, tables);
    if (mismatches.length > 0) {
      throw new BackupRunnerError(
        'BACKUP_DRILL_MISMATCH',
        `the corpus restored from ${file} differs from its manifest in ${mismatches.map((m) => m.name).join(', ')}; nothing was restored`,
      );
    }
    const settlement = await settleRestore(target as unknown as PoolClient, {
      file,
      sha256: manifest.sha256,
      backupRunId: manifest.run_id,
      scope: 'corpus',
      tables: tables.map((t) => ({ name: t.name, rows: t.rows })),
    });
    await target.query('COMMIT');
    return { tables, settlement };
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The backup's columns of a corpus table, each of which the target must have. */
async function copyColumns(table: string, scratch: pg.Client, target: pg.Client): Promise<string[]> {
  const list = async (client: pg.Client) =>
    (
      await client.query<{ name: string }>(
        `SELECT attname AS name FROM pg_catalog.pg_attribute
          WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
        [table],
      )
    ).rows.map((r) => r.name);
  const [backup, live] = [await list(scratch), new Set(await list(target))];
  const unknown = backup.filter((c) => !live.has(c));
  if (unknown.length > 0) {
    throw new BackupRunnerError('RESTORE_SCHEMA_MISMATCH', `the backup's ${table} has column(s) ${unknown.join(', ')} that the database lacks; nothing was restored`);
  }
  return backup;
}

function quoted(table: string): string {
  const [schema = '', name = ''] = table.split('.');
  return `${ident(schema)}.${ident(name)}`;
}

/** The URL of another database on the same server, with the same credentials. */
function siblingUrl(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
