import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { KEY_PATTERN } from '../snapshot/record.js';
import type { PlanExportItem } from './export.js';

/**
 * A run's plan items a page at a time, as `plan show`, the plan API and
 * the run page read them: filtered by op and key prefix, in byte order of
 * key, keyset-paged on key (the cursor is the last key of a page).
 */

/** The op names a filter accepts; `revise` and `transition` also match `revise+transition`. */
export const PLAN_OP_FILTERS = ['create', 'revise', 'transition', 'revise+transition'] as const;
export type PlanOpFilter = (typeof PLAN_OP_FILTERS)[number];

/** The stored ops each filter selects. */
export const OPS_OF_FILTER: Record<PlanOpFilter, readonly string[]> = {
  create: ['create'],
  revise: ['revise', 'revise+transition'],
  transition: ['transition', 'revise+transition'],
  'revise+transition': ['revise+transition'],
};

/** What to read of a plan: filters, where to start (exclusive) and how many. */
export interface PlanQuery {
  op?: PlanOpFilter;
  /** Keys starting with this. */
  keyPrefix?: string;
  /** Keys after this one in byte order (the keyset cursor). */
  after?: string;
  limit: number;
}

/** Checks a filter or cursor value a user gave; throws a bad_input CutterError naming the option. */
export function parsePlanQuery(raw: { op?: string | undefined; key?: string | undefined; after?: string | undefined; limit?: string | undefined }, defaults: { limit: number; maxLimit: number }): PlanQuery {
  const query: PlanQuery = { limit: defaults.limit };
  if (raw.op !== undefined && raw.op !== '') {
    if (!(PLAN_OP_FILTERS as readonly string[]).includes(raw.op)) {
      throw new CutterError('PLAN_OP_INVALID', `op must be one of ${PLAN_OP_FILTERS.join(', ')}, not ${JSON.stringify(raw.op)}`, { kind: 'bad_input' });
    }
    query.op = raw.op as PlanOpFilter;
  }
  if (raw.key !== undefined && raw.key !== '') {
    // Every non-empty prefix of a valid key matches the key pattern itself.
    if (!KEY_PATTERN.test(raw.key)) {
      throw new CutterError('PLAN_KEY_INVALID', `key prefix ${JSON.stringify(raw.key)} cannot start any key (keys match ${KEY_PATTERN.source})`, { kind: 'bad_input' });
    }
    query.keyPrefix = raw.key;
  }
  if (raw.after !== undefined && raw.after !== '') {
    if (!KEY_PATTERN.test(raw.after)) {
      throw new CutterError('PLAN_CURSOR_INVALID', `after must be a key (the "next" of the page before), not ${JSON.stringify(raw.after)}`, { kind: 'bad_input' });
    }
    query.after = raw.after;
  }
  if (raw.limit !== undefined && raw.limit !== '') {
    const n = Number(raw.limit);
    if (!/^\d+$/.test(raw.limit) || !Number.isSafeInteger(n) || n < 1 || n > defaults.maxLimit) {
      throw new CutterError('PLAN_LIMIT_INVALID', `limit must be a whole number from 1 to ${defaults.maxLimit}, not ${JSON.stringify(raw.limit)}`, { kind: 'bad_input' });
    }
    query.limit = n;
  }
  return query;
}

/**
 * The end of a key prefix's range in byte order: the prefix with its last
 * character raised by one. Prefixes are ASCII (the key pattern), so the
 * result is too, and every key starting with the prefix sorts below it.
 */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/**
 * The item columns under the export's names. ORDER BY key COLLATE "C" is
 * byte order (keys are ASCII) and walks the index of migration 024; every
 * bound on key is compared in the same collation so the index serves it.
 * $1 run, $2 ops (null: all), $3 lower bound inclusive, $4 after (exclusive),
 * $5 upper bound exclusive, $6 limit.
 */
const ITEMS = `
  SELECT i.key, i.op, i.transition, i.pre_state AS from_state, i.post_state AS to_state,
         i.pre_version AS from_version, i.post_version AS to_version,
         i.pre_body_sha256 AS body_sha256_before, i.post_body_sha256 AS body_sha256_after`;
const WHERE = `
    FROM cutter_governance.cut_change_item i
   WHERE i.run_id = $1
     AND ($2::text[] IS NULL OR i.op = ANY ($2::text[]))
     AND ($3::text IS NULL OR i.key COLLATE "C" >= $3::text COLLATE "C")
     AND ($4::text IS NULL OR i.key COLLATE "C" > $4::text COLLATE "C")
     AND ($5::text IS NULL OR i.key COLLATE "C" < $5::text COLLATE "C")
   ORDER BY i.key COLLATE "C"
   LIMIT $6`;
const PAGE = `${ITEMS}${WHERE}`;

/**
 * A page with the bodies for a diff: the body before is the unit's version
 * the plan starts from; the body after is the item's post_body, or (a
 * transition alone) that same body unchanged.
 */
const PAGE_WITH_BODIES = `${ITEMS}, v.body AS body_before, coalesce(i.post_body, v.body) AS body_after${WHERE.replace(
  'FROM cutter_governance.cut_change_item i',
  `FROM cutter_governance.cut_change_item i
    LEFT JOIN public.unit_version v ON v.unit_id = i.unit_id AND v.version = i.pre_version`,
)}`;

function params(runId: string, q: PlanQuery): unknown[] {
  return [
    runId,
    q.op ? [...OPS_OF_FILTER[q.op]] : null,
    q.keyPrefix ?? null,
    q.after ?? null,
    q.keyPrefix ? prefixEnd(q.keyPrefix) : null,
    q.limit,
  ];
}

/** A page of items and the cursor of the next one (null at the end). */
export interface PlanPage<T extends PlanExportItem = PlanExportItem> {
  items: T[];
  next: string | null;
}

/** An item with the bodies before (null for a new unit) and after (null only if a stored version went missing). */
export interface PlanItemWithBodies extends PlanExportItem {
  body_before: string | null;
  body_after: string | null;
}

function paged<T extends PlanExportItem>(rows: T[], limit: number): PlanPage<T> {
  // One row more than asked says whether there is a next page without a count.
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? (items[items.length - 1]?.key ?? null) : null };
}

/** One page of a run's items in byte order of key. */
export async function readPlanPage(db: Pool | PoolClient, runId: string, q: PlanQuery): Promise<PlanPage> {
  const { rows } = await db.query<PlanExportItem>(PAGE, params(runId, { ...q, limit: q.limit + 1 }));
  return paged(rows, q.limit);
}

/** One page of items with their bodies (for diffs). */
export async function readPlanPageWithBodies(db: Pool | PoolClient, runId: string, q: PlanQuery): Promise<PlanPage<PlanItemWithBodies>> {
  const { rows } = await db.query<PlanItemWithBodies>(PAGE_WITH_BODIES, params(runId, { ...q, limit: q.limit + 1 }));
  return paged(rows, q.limit);
}

/** Walks every item the query selects, a page at a time (memory holds one page), up to q.limit items in all. */
export async function* walkPlan<T extends PlanExportItem>(
  read: (q: PlanQuery) => Promise<PlanPage<T>>,
  q: PlanQuery,
  pageSize = 1000,
): AsyncGenerator<T> {
  let left = q.limit;
  let after = q.after;
  while (left > 0) {
    const page = await read({ ...q, ...(after === undefined ? {} : { after }), limit: Math.min(pageSize, left) });
    for (const item of page.items) yield item;
    left -= page.items.length;
    if (page.next === null) return;
    after = page.next;
  }
}
