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

/**
 * The same canonical text built and hashed inside PostgreSQL, in one
 * statement: no item crosses the network. Each line joins the columns
 * CANONICAL_COPY prints with TABs, so it is canonicalLine byte for byte (a
 * test holds the three forms equal). It is built with || rather than
 * concat_ws (20% faster at 100,000 items: no variadic call per line); a NULL
 * in a NOT NULL column would drop its line and so change the hash, which
 * fails closed. The aggregate's ORDER BY key COLLATE "C"
 * is the byte order planSha256 sorts by (the index's order is the database's
 * collation, which need not be "C"). The whole text is held in the backend's
 * memory, which is why large plans are streamed instead.
 * $1 = run id, $2 = PLAN_CANONICAL_VERSION.
 */
const CANONICAL_SHA256 = `
  SELECT s.corpus,
         encode(sha256(convert_to($2 || E'\\t' || s.corpus || E'\\n' || coalesce(l.text, ''), 'UTF8')), 'hex') AS sha256
    FROM cutter_governance.cut_change_set s
   CROSS JOIN LATERAL (
     SELECT string_agg(key || E'\\t' || op || E'\\t' || coalesce(transition, '-') || E'\\t' || coalesce(pre_state, '-') || E'\\t' ||
                       coalesce(pre_version::text, '-') || E'\\t' || coalesce(pre_body_sha256, '-') || E'\\t' ||
                       post_state || E'\\t' || post_version::text || E'\\t' || post_body_sha256 || E'\\n',
                       '' ORDER BY key COLLATE "C") AS text
       FROM cutter_governance.cut_change_item
      WHERE run_id = s.run_id) l
   WHERE s.run_id = $1`;

/**
 * Above this many items the text (≈ 240 B an item, held twice while it is
 * converted and hashed) would cost the backend more memory than a hash of
 * it is worth; the COPY form streams it with flat memory instead.
 */
export const IN_DATABASE_MAX_ITEMS = 250_000;

/**
 * Memory for the sort by key: at the default 4 MB a 100,000-item plan's sort
 * spilled to disk (≈ 20 MB of lines). Raised for the hash statement only
 * (the sort holds what it needs and no more: a bound, not an allocation).
 */
const HASH_WORK_MEM = '64MB';

/** Runs fn with work_mem raised for the transaction, then puts the old value back. */
async function withHashWorkMem<T>(client: PoolClient, fn: () => Promise<T>): Promise<T> {
  const before = await client.query<{ wm: string }>(`SELECT current_setting('work_mem') AS wm, set_config('work_mem', $1, true)`, [HASH_WORK_MEM]);
  try {
    return await fn();
  } finally {
    // After a failed statement the transaction is over, and SET LOCAL with it: nothing to put back.
    await client.query(`SELECT set_config('work_mem', $1, true)`, [before.rows[0]?.wm ?? '4MB']).catch(() => undefined);
  }
}

/** plan_sha256 of a run's stored items, computed by PostgreSQL (null when the run has no change set). */
export async function inDatabasePlanSha256(client: PoolClient, runId: string): Promise<{ corpus: string; sha256: string } | null> {
  const { rows } = await withHashWorkMem(client, () =>
    client.query<{ corpus: string; sha256: string }>(CANONICAL_SHA256, [runId, PLAN_CANONICAL_VERSION]),
  );
  return rows[0] ?? null;
}

/** plan_sha256 of a run's stored items, streamed through Node in canonical order (memory stays flat). */
export async function streamedPlanSha256(client: PoolClient, runId: string): Promise<string> {
  const corpus = (await changeSet(client, runId)).corpus;
  const hash = createHash('sha256').update(canonicalHeader(corpus));
  await withHashWorkMem(client, () => hashStoredItems(client, runId, hash));
  return hash.digest('hex');
}

async function changeSet(client: PoolClient, runId: string): Promise<{ corpus: string; unit_count: number }> {
  const set = await client.query<{ corpus: string; unit_count: number }>(
    'SELECT corpus, unit_count FROM cutter_governance.cut_change_set WHERE run_id = $1',
    [runId],
  );
  const row = set.rows[0];
  if (!row) throw new CutterError('PLAN_MISSING', `run ${runId} has no change set`);
  return row;
}

/**
 * plan_sha256 recomputed from the items stored for a run (what execute checks
 * against the frozen hash): in the database for plans of up to
 * IN_DATABASE_MAX_ITEMS, streamed above. The set's unit_count only picks the
 * form; both hash the same items to the same value, so a wrong count cannot
 * change the answer.
 */
export async function recomputePlanSha256(client: PoolClient, runId: string): Promise<string> {
  const set = await changeSet(client, runId);
  if (set.unit_count > IN_DATABASE_MAX_ITEMS) return streamedPlanSha256(client, runId);
  const hashed = await inDatabasePlanSha256(client, runId);
  if (!hashed) throw new CutterError('PLAN_MISSING', `run ${runId} has no change set`);
  return hashed.sha256;
}
