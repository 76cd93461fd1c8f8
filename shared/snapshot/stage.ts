import * as crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import copyStreams from 'pg-copy-streams';
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { atomically } from '../db/savepoint.js';
import { CutterError } from '../errors.js';
import { SnapshotReader } from './reader.js';
import { statSnapshot, validateSnapshot, type SnapshotCheck } from './validate.js';

/**
 * Discover's half of C5: a snapshot is validated whole (nothing touches the
 * database when it is invalid), then read a second time and streamed into
 * cutter_governance.snapshot_record with one COPY, in one transaction.
 */

export interface StageArgs {
  runId: string;
  corpus: string;
  path: string;
  maxErrors?: number;
}

export interface StageResult {
  records: number;
  bytes: number;
  /** sha256 of the file's bytes, lowercase hex. */
  sha256: string;
}

const COPY_SQL = 'COPY cutter_governance.snapshot_record (run_id, key, state, body, body_sha256, line_no) FROM STDIN';

// crypto.hash (Node ≥ 20.12) is a one-shot call, much cheaper per small body than createHash.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** sha256 of a string's UTF-8 bytes, lowercase hex. */
export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

const COPY_SPECIAL = /[\\\n\r\t]/;

/** Escapes a value for COPY's text format (keys and states never need it; bodies may). */
function copyText(value: string): string {
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
}

/**
 * Validates the whole snapshot (throwing SNAPSHOT_INVALID with every issue up
 * to maxErrors when it is not valid), then stages it for the run in one
 * transaction. Idempotent: the run's earlier rows are replaced.
 */
export async function stageSnapshot(pool: Pool, args: StageArgs): Promise<StageResult> {
  const checked = await validateSnapshot(args.path, { corpus: args.corpus, ...(args.maxErrors === undefined ? {} : { maxErrors: args.maxErrors }) });
  return withTransaction(pool, (client) => stageChecked(client, args, checked));
}

/** The same on a client the caller holds, under a savepoint when it has a transaction open (`cutter plan` rolls it back). */
export async function stageSnapshotWith(client: PoolClient, args: StageArgs): Promise<StageResult> {
  const checked = await validateSnapshot(args.path, { corpus: args.corpus, ...(args.maxErrors === undefined ? {} : { maxErrors: args.maxErrors }) });
  return atomically(client, () => stageChecked(client, args, checked));
}

async function stageChecked(client: PoolClient, args: StageArgs, checked: SnapshotCheck): Promise<StageResult> {
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
  let batch = '';
  let changed = false;
  const reader = new SnapshotReader({
    corpus: args.corpus,
    maxErrors: 1,
    onRecord: (record, at) => {
      batch += `${args.runId}\t${record.key}\t${record.state}\t${copyText(record.body)}\t${sha256Hex(record.body)}\t${at.line}\n`;
    },
  });
  async function* rows(): AsyncGenerator<string> {
    for await (const chunk of createReadStream(args.path, { highWaterMark: 64 * 1024 })) {
      fileHash.update(chunk as Buffer);
      reader.push(chunk as Buffer);
      if (reader.issues.length > 0) {
        changed = true;
        return;
      }
      if (batch.length > 0) {
        yield batch;
        batch = '';
      }
    }
    reader.end();
    if (batch.length > 0) yield batch;
  }
  const copy = client.query(copyStreams.from(COPY_SQL));
  await pipeline(Readable.from(rows(), { objectMode: false }), copy);

  const after = await statSnapshot(args.path);
  if (changed || reader.issues.length > 0 || reader.records !== checked.records || after.stamp !== checked.fileStamp) {
    // Thrown inside the transaction, so what was copied is rolled back.
    throw new CutterError('SNAPSHOT_CHANGED', `snapshot ${args.path} changed while it was being staged; nothing was staged, try again`);
  }
  return { records: reader.records, bytes: reader.bytes, sha256: fileHash.digest('hex') };
}

/**
 * Drops a run's staged snapshot once the run has ended: the plan items keep
 * everything the run needed, and a million staged rows per run would
 * otherwise stay forever.
 */
export async function discardStagedSnapshot(db: Pool | PoolClient, runId: string): Promise<void> {
  await db.query('DELETE FROM cutter_governance.snapshot_record WHERE run_id = $1', [runId]);
}
