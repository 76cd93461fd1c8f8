import * as crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import copyStreams from 'pg-copy-streams';
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { atomically } from '../db/savepoint.js';
import { CutterError } from '../errors.js';
import { SnapshotReader } from './reader.js';
import { KeyIndex } from './key-index.js';
import { fileSource, type SnapshotSource } from './source.js';
import { validateSnapshot, type ValidateOptions } from './validate.js';

/**
 * Discover's half of C5: a snapshot (a file, or input computed from the
 * database: shared/snapshot/source.ts) is read once and streamed into
 * cutter_governance.snapshot_record with one COPY, in one transaction, while
 * every record is checked and every key remembered (KeyIndex). At the first
 * problem the COPY stops and the transaction is rolled back, so nothing of an
 * invalid file is ever staged; the report that names every problem (up to
 * maxErrors, a duplicate with both its lines) then comes from the full
 * validator (validateSnapshot), the one `cutter plan` users see. A valid
 * file is read once instead of twice (the second read cost about a second
 * per million records). The keys' uniqueness is proven here: the staging
 * table has no primary key to prove it again (shared/db/migrations/010_staging_checks_indexes.sql).
 */

export type StageArgs = {
  runId: string;
  corpus: string;
  maxErrors?: number;
  /** The duplicate index; tests pass one whose every key collides, to exercise the confirmation. */
  keyIndex?: Pick<KeyIndex, 'add'>;
} & ({ path: string } | { source: SnapshotSource });

export interface StageResult {
  records: number;
  bytes: number;
  /** sha256 of the snapshot's bytes, lowercase hex. */
  sha256: string;
}

/** What a staging reads: the file at args.path, or args.source. */
function sourceOf(args: StageArgs): SnapshotSource {
  return 'source' in args ? args.source : fileSource(args.path);
}

const COPY_SQL = 'COPY cutter_governance.snapshot_record (run_id, key, state, body, body_sha256, line_no) FROM STDIN';

// crypto.hash (Node ≥ 20.12) is a one-shot call, much cheaper per small body than createHash.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** sha256 of a string's UTF-8 bytes, lowercase hex. */
export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** From this many staged records on, the staging table's statistics are refreshed for the plan's join. */
const ANALYZE_FROM_RECORDS = 10_000;

const COPY_SPECIAL = /[\\\n\r\t]/;

/** Escapes a value for COPY's text format (keys and states never need it; bodies may). */
function copyText(value: string): string {
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/** Stages the snapshot for the run in one transaction (SNAPSHOT_INVALID, nothing staged, when it is not valid). Idempotent: the run's earlier rows are replaced. */
export async function stageSnapshot(pool: Pool, args: StageArgs): Promise<StageResult> {
  const source = sourceOf(args);
  const before = await source.stat();
  return withTransaction(pool, (client) => stageOnePass(client, args, source, before));
}

/** The same on a client the caller holds, under a savepoint when it has a transaction open (`cutter plan` rolls it back). */
export async function stageSnapshotWith(client: PoolClient, args: StageArgs): Promise<StageResult> {
  const source = sourceOf(args);
  const before = await source.stat();
  return atomically(client, () => stageOnePass(client, args, source, before));
}

async function stageOnePass(client: PoolClient, args: StageArgs, source: SnapshotSource, before: { size: number; stamp: string }): Promise<StageResult> {
  const run = await client.query<{ corpus: string }>('SELECT corpus FROM cutter_governance.run WHERE run_id = $1', [args.runId]);
  const corpus = run.rows[0]?.corpus;
  if (corpus === undefined) throw new CutterError('RUN_UNKNOWN', `no run ${args.runId}: a snapshot is staged for an existing run`);
  if (corpus !== args.corpus) {
    throw new CutterError('SNAPSHOT_CORPUS_MISMATCH', `run ${args.runId} is for corpus ${corpus}, not ${args.corpus}`);
  }
  // Two deliveries of the same discover job take turns instead of colliding on the primary key.
  await client.query(`SELECT pg_advisory_xact_lock(hashtext('cutter.snapshot'), hashtext($1))`, [args.runId]);
  await client.query('DELETE FROM cutter_governance.snapshot_record WHERE run_id = $1', [args.runId]);

  const fileHash = crypto.createHash('sha256');
  // Sized as the validator sizes it: records of about 64 bytes, up to a million keys.
  const keys = args.keyIndex ?? new KeyIndex(Math.min(1 << 20, Math.ceil(before.size / 64)));
  let suspects = 0;
  let batch = '';
  const reader = new SnapshotReader({
    corpus: args.corpus,
    maxErrors: 1,
    onRecord: (record, at, ordinal) => {
      // A hash hit is only a suspected duplicate (two keys can share a hash); the validator settles it below.
      if (keys.add(record.key, ordinal) >= 0) suspects += 1;
      batch += `${args.runId}\t${record.key}\t${record.state}\t${copyText(record.body)}\t${sha256Hex(record.body)}\t${at.line}\n`;
    },
  });
  async function* rows(): AsyncGenerator<string> {
    for await (const chunk of source.open()) {
      fileHash.update(chunk);
      reader.push(chunk);
      if (reader.issues.length > 0) return; // the COPY ends here and is rolled back below
      if (batch.length > 0) {
        yield batch;
        batch = '';
      }
    }
    reader.end();
    if (batch.length > 0) yield batch;
  }
  await pipeline(Readable.from(rows(), { objectMode: false }), client.query(copyStreams.from(COPY_SQL)));
  if (reader.issues.length > 0) await reportInvalid(source, args);
  // Throws SNAPSHOT_INVALID for a true duplicate; returns when every suspect was two keys sharing a hash.
  if (suspects > 0) await validateSnapshot(source, validateOptions(args));
  if (reader.records >= ANALYZE_FROM_RECORDS) {
    // The plan joins these rows with the corpus. Statistics from before this
    // load (another run's rows, or an empty table) made the planner probe the
    // corpus's indexes once per record: at a million records 8.9 s against
    // 5.8 s for the hash join that fresh statistics choose. ANALYZE counts
    // this transaction's own rows; it samples, so it costs a fraction of a
    // second at any size. Its lock (SHARE UPDATE EXCLUSIVE, kept until this
    // transaction ends) lets COPYs go on but makes two large stagings take
    // turns at this last step. Run by a role that does not own the table, it
    // only warns, and the plan runs as before.
    await client.query('ANALYZE cutter_governance.snapshot_record');
  }
  const after = await source.stat();
  if (after.stamp !== before.stamp) {
    // Thrown inside the transaction, so what was copied is rolled back.
    throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${source.name} changed while it was being staged; nothing was staged, try again`);
  }
  return { records: reader.records, bytes: reader.bytes, sha256: fileHash.digest('hex') };
}

/**
 * The file is invalid: throws the validator's SNAPSHOT_INVALID with every
 * problem it finds (up to maxErrors), inside the caller's transaction so the
 * rows copied so far are rolled back. Should the validator find the file
 * valid after all, it was replaced while being read.
 */
async function reportInvalid(source: SnapshotSource, args: StageArgs): Promise<never> {
  await validateSnapshot(source, validateOptions(args));
  throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${source.name} changed while it was being staged; nothing was staged, try again`);
}

function validateOptions(args: StageArgs): ValidateOptions {
  return { corpus: args.corpus, ...(args.maxErrors === undefined ? {} : { maxErrors: args.maxErrors }) };
}

/**
 * Drops a run's staged snapshot once the run has ended: the plan items keep
 * everything the run needed, and a million staged rows per run would
 * otherwise stay forever.
 */
export async function discardStagedSnapshot(db: Pool | PoolClient, runId: string): Promise<void> {
  await db.query('DELETE FROM cutter_governance.snapshot_record WHERE run_id = $1', [runId]);
}
