import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import copyStreams from 'pg-copy-streams';
import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { PLAN_CANONICAL_VERSION, type PlanItemFields } from './hash.js';

/**
 * A run's frozen change set as the reviewer sees it (docs/plan-review.md):
 * the one place that maps cut_change_item's columns to the export's field
 * names (pages of items: plan-items.ts), and the NDJSON export streamed
 * whole: a header line, then one line per item in byte order of key.
 */

/** One plan item as `plan show`, the plan API and the NDJSON export name its fields (in this order). */
export interface PlanExportItem {
  key: string;
  op: string;
  transition: string | null;
  from_state: string | null;
  to_state: string;
  from_version: number | null;
  to_version: number;
  body_sha256_before: string | null;
  body_sha256_after: string;
}

/** The export's first line. */
export interface PlanExportHeader {
  cutter_plan: string;
  run_id: string;
  target: string;
  corpus: string;
  plan_sha256: string;
  unit_count: number;
}

/** The canonical fields of an exported item (what plan_sha256 covers, shared/plan/hash.ts). */
export function canonicalFields(item: PlanExportItem): PlanItemFields {
  return {
    key: item.key,
    op: item.op,
    transition: item.transition,
    pre_state: item.from_state,
    pre_version: item.from_version,
    pre_body_sha256: item.body_sha256_before,
    post_state: item.to_state,
    post_version: item.to_version,
    post_body_sha256: item.body_sha256_after,
  };
}

/** One export line of an item (JSON.stringify keeps PlanExportItem's field order). */
export function exportLine(item: PlanExportItem): string {
  const ordered: PlanExportItem = {
    key: item.key,
    op: item.op,
    transition: item.transition,
    from_state: item.from_state,
    to_state: item.to_state,
    from_version: item.from_version,
    to_version: item.to_version,
    body_sha256_before: item.body_sha256_before,
    body_sha256_after: item.body_sha256_after,
  };
  return `${JSON.stringify(ordered)}\n`;
}

/** The export's header line. */
export function headerLine(header: Omit<PlanExportHeader, 'cutter_plan'>): string {
  const h: PlanExportHeader = {
    cutter_plan: PLAN_CANONICAL_VERSION,
    run_id: header.run_id,
    target: header.target,
    corpus: header.corpus,
    plan_sha256: header.plan_sha256,
    unit_count: header.unit_count,
  };
  return `${JSON.stringify(h)}\n`;
}

/** A run's change set header, or null when the run has none. */
export async function readPlanHeader(db: Pool | PoolClient, runId: string): Promise<PlanExportHeader | null> {
  const { rows } = await db.query<Omit<PlanExportHeader, 'cutter_plan'>>(
    'SELECT run_id, target, corpus, plan_sha256, unit_count FROM cutter_governance.cut_change_set WHERE run_id = $1',
    [runId],
  );
  const row = rows[0];
  return row ? { cutter_plan: PLAN_CANONICAL_VERSION, ...row } : null;
}

/**
 * An item's export line (without its LF) built by PostgreSQL, byte for byte
 * exportLine (a test holds the two paths equal): what the NDJSON export is
 * made of. Byte-safe: no field can hold a quote, a backslash or a control
 * character (keys match the key pattern, the rest are CHECKed enums,
 * integers and lowercase hex); to_json quotes the key all the same.
 */
const ITEM_JSON = `'{"key":' || to_json(key)::text || ',"op":"' || op || '","transition":' || coalesce('"' || transition || '"', 'null') ||
         ',"from_state":' || coalesce('"' || pre_state || '"', 'null') || ',"to_state":"' || post_state ||
         '","from_version":' || coalesce(pre_version::text, 'null') || ',"to_version":' || post_version::text ||
         ',"body_sha256_before":' || coalesce('"' || pre_body_sha256 || '"', 'null') || ',"body_sha256_after":"' || post_body_sha256 || '"}'`;

/**
 * Every item's export line (ITEM_JSON), streamed out by COPY. COPY's text
 * form escapes only backslashes and control characters, which no line
 * holds; a key with one, which the key pattern forbids, would come out as
 * invalid JSON and be refused by `plan hash`, never hashed as something
 * else. Building the lines here was measured faster than building them in
 * Node from the bare columns (JSON.stringify, templates, or one regular
 * expression replace per 64 KiB): at a million rows Node's per-line strings
 * cost more than PostgreSQL's concatenation.
 */
const EXPORT_COPY = `COPY (
  SELECT ${ITEM_JSON}
    FROM cutter_governance.cut_change_item
   WHERE run_id = current_setting('cutter.plan_export_run')
   ORDER BY key COLLATE "C") TO STDOUT`;

/** COPY's chunks (one a row) joined into ~64 KiB ones: a million lines cost a few hundred writes downstream. */
class Batcher extends Transform {
  private parts: Buffer[] = [];
  private length = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.parts.push(chunk);
    this.length += chunk.length;
    if (this.length >= 1 << 16) this.emit64k();
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.length > 0) this.emit64k();
    done();
  }

  private emit64k(): void {
    this.push(Buffer.concat(this.parts, this.length));
    this.parts = [];
    this.length = 0;
  }
}

/**
 * Streams a run's items as export lines (without the header) on a client
 * the caller holds until the stream ends. Memory stays flat at any size;
 * destroying the stream ends the COPY (the client is then not reusable).
 */
export async function streamExportLines(client: PoolClient, runId: string): Promise<Readable> {
  // COPY takes no $n parameters; the run id travels as one through set_config (session-wide: the client is the caller's).
  await client.query(`SELECT set_config('cutter.plan_export_run', $1, false)`, [runId]);
  // pipeline passes an error of the COPY on to the batches, and a destroyed batch stream back to the COPY.
  return pipeline(client.query(copyStreams.to(EXPORT_COPY)), new Batcher(), () => undefined);
}

/** The run's plan header, or a RUN_UNKNOWN / PLAN_MISSING error (bad input: the run id is the user's). */
export async function requirePlanHeader(db: Pool | PoolClient, runId: string): Promise<PlanExportHeader> {
  const header = await readPlanHeader(db, runId);
  if (header) return header;
  const run = await db.query('SELECT 1 FROM cutter_governance.run WHERE run_id = $1', [runId]);
  if (!run.rowCount) throw new CutterError('RUN_UNKNOWN', `no run ${runId}`, { kind: 'bad_input' });
  throw new CutterError('PLAN_MISSING', `run ${runId} has no plan yet (cutplan has not completed)`, { kind: 'refused' });
}
