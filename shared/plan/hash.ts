import { createHash, type Hash } from 'node:crypto';
import copyStreams from 'pg-copy-streams';
import type { PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';

/**
 * plan_sha256: the sha256 (lowercase hex) of the plan's canonical text, which
 * is UTF-8, LF-terminated lines:
 *
 *   cutter-plan-v1<TAB><corpus>
 *   <key> <op> <transition> <pre_state> <pre_version> <pre_body_sha256> <post_state> <post_version> <post_body_sha256>
 *   …one line per item, fields separated by one TAB, "-" for an absent value
 *
 * with items sorted by key in byte order (keys are ASCII, so this is also
 * UTF-16 order). The header binds the corpus; each line binds what the unit
 * is now (preconditions) and what it will be (postconditions; the body by
 * its hash). unit_id is left out: it is the database's name for the unit,
 * not part of what is approved. Line order in the snapshot cannot change the
 * text, and any change to what the plan does changes it.
 */

export const PLAN_CANONICAL_VERSION = 'cutter-plan-v1';

/** The fields of a plan item the hash covers (cut_change_item's column names). */
export interface PlanItemFields {
  key: string;
  op: string;
  transition: string | null;
  pre_state: string | null;
  pre_version: number | null;
  pre_body_sha256: string | null;
  post_state: string;
  post_version: number;
  post_body_sha256: string;
}

/** The first line of the canonical text. */
export function canonicalHeader(corpus: string): string {
  return `${PLAN_CANONICAL_VERSION}\t${corpus}\n`;
}

/** One item's line of the canonical text. */
export function canonicalLine(item: PlanItemFields): string {
  const f = (v: string | number | null) => (v === null ? '-' : String(v));
  return `${[item.key, item.op, f(item.transition), f(item.pre_state), f(item.pre_version), f(item.pre_body_sha256), item.post_state, item.post_version, item.post_body_sha256].join('\t')}\n`;
}

const byteOrder = (a: PlanItemFields, b: PlanItemFields) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** plan_sha256 of a set of items, in any order. */
export function planSha256(corpus: string, items: Iterable<PlanItemFields>): string {
  const hash = createHash('sha256').update(canonicalHeader(corpus));
  for (const item of [...items].sort(byteOrder)) hash.update(canonicalLine(item));
  return hash.digest('hex');
}

/**
 * The same canonical lines, produced by PostgreSQL: COPY's text output of
 * these columns is byte for byte canonicalLine (no value can hold a TAB,
 * newline or backslash: keys are limited by the key pattern, the rest are
 * enums, integers and hex). A test holds the two forms equal.
 */
const CANONICAL_COPY = `COPY (
  SELECT key, op, coalesce(transition, '-'), coalesce(pre_state, '-'), coalesce(pre_version::text, '-'),
         coalesce(pre_body_sha256, '-'), post_state, post_version, post_body_sha256
    FROM cutter_governance.cut_change_item
   WHERE run_id = current_setting('cutter.plan_hash_run')
   ORDER BY key COLLATE "C") TO STDOUT`;

/** Streams a run's items, in canonical order, into a hash (memory stays flat at any plan size). */
export async function hashStoredItems(client: PoolClient, runId: string, hash: Hash): Promise<void> {
  // COPY takes no $n parameters; the run id travels as one through set_config.
  await client.query(`SELECT set_config('cutter.plan_hash_run', $1, false)`, [runId]);
  try {
    for await (const chunk of client.query(copyStreams.to(CANONICAL_COPY))) hash.update(chunk as Buffer);
  } finally {
    await client.query(`SELECT set_config('cutter.plan_hash_run', '', false)`).catch(() => undefined);
  }
}

/** plan_sha256 recomputed from the items stored for a run (what execute checks against the frozen hash). */
export async function recomputePlanSha256(client: PoolClient, runId: string): Promise<string> {
  const set = await client.query<{ corpus: string }>('SELECT corpus FROM cutter_governance.cut_change_set WHERE run_id = $1', [runId]);
  const corpus = set.rows[0]?.corpus;
  if (corpus === undefined) throw new CutterError('PLAN_MISSING', `run ${runId} has no change set`);
  const hash = createHash('sha256').update(canonicalHeader(corpus));
  await hashStoredItems(client, runId, hash);
  return hash.digest('hex');
}
