import { z } from 'zod';
import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/errors.js';
import { withTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { fingerprintTable } from '../runs/fingerprint.js';
import { SWITCH_ROW as SWITCH_ITEM } from './db-state.js';
import { readOnly } from './read-only.js';
import type { BaselineLine } from './types.js';

/**
 * The G0 baseline in the readiness report's own terms: the corpus and the
 * governance records an operator reads line by line, each with its row
 * count and a fingerprint of its content, and the kill switch. Recorded
 * once under a name; `cutter readiness --baseline NAME` compares now with it.
 */

/** The tables of a G0 baseline, in the report's order. */
export const G0_TABLES = [
  'public.information_unit',
  'public.unit_version',
  'public.iu_lifecycle_log',
  'cutter_governance.cut_change_set',
  'cutter_governance.review_decision',
  'cutter_governance.verify_result',
] as const;

/** The line of the enacted units and the line of the switch. */
export const ENACTED_ITEM = 'enacted units';

const itemSchema = z.object({
  item: z.string(),
  /** Rows, or for the switch 1 when on and 0 when off. */
  count: z.number().int().nonnegative(),
  /** md5 over the table's rows (null for counts that are not a table). */
  hash: z.string().nullable(),
  /** What the count is made of, e.g. "98 draft + 60 enacted". */
  detail: z.string().nullable(),
});
export type G0Item = z.infer<typeof itemSchema>;
const itemsSchema = z.array(itemSchema);

export interface RecordedBaseline {
  name: string;
  recorded_utc: string;
  recorded_by: string;
  items: G0Item[];
}

export const BASELINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DEFAULT_BASELINE_NAME = 'G0';

/** The G0 items as the database holds them now (on a client in the caller's transaction). */
export async function measureG0(client: PoolClient): Promise<G0Item[]> {
  const items: G0Item[] = [];
  for (const table of G0_TABLES) {
    const f = await fingerprintTable(client, table);
    items.push({ item: table, count: f.rows, hash: f.hash, detail: table === 'public.information_unit' ? await byState(client) : null });
  }
  const enacted = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.information_unit WHERE state = 'enacted'`);
  items.push({ item: ENACTED_ITEM, count: enacted.rows[0]?.n ?? 0, hash: null, detail: null });
  const on = await client.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
  items.push({ item: SWITCH_ITEM, count: on.rows[0]?.on ? 1 : 0, hash: null, detail: null });
  return items;
}

/** "98 draft + 60 enacted": the units by state, in lifecycle order. */
async function byState(client: PoolClient): Promise<string> {
  const { rows } = await client.query<{ state: string; n: number }>(
    `SELECT state, count(*)::int AS n FROM public.information_unit GROUP BY state
      ORDER BY array_position(ARRAY['draft', 'enacted', 'retired'], state)`,
  );
  return rows.map((r) => `${r.n} ${r.state}`).join(' + ') || 'none';
}

/** `cutter baseline record`: measures G0 and stores it under a new name, audited. */
export async function recordBaseline(pool: Pool, name: string, actor: string): Promise<RecordedBaseline> {
  if (!BASELINE_NAME.test(name)) throw new CutterError('BASELINE_NAME_INVALID', `--name must be letters, digits, . _ - (at most 64), not ${JSON.stringify(name)}`, { kind: 'bad_input' });
  try {
    return await withTransaction(pool, async (client) => {
      // One snapshot of the database for every item.
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const items = await measureG0(client);
      const { rows } = await client.query<{ recorded_utc: Date }>(
        'INSERT INTO cutter_governance.g0_baseline (name, recorded_by, items) VALUES ($1, $2, $3) RETURNING recorded_utc',
        [name, actor, JSON.stringify(items)],
      );
      await appendAudit(client, { actor, kind: 'baseline.recorded', detail: { name, items: items.map((i) => ({ item: i.item, count: i.count, hash: i.hash })) } });
      return { name, recorded_utc: (rows[0]?.recorded_utc ?? new Date()).toISOString(), recorded_by: actor, items };
    });
  } catch (err) {
    if (isPgError(err, '23505')) throw new CutterError('BASELINE_EXISTS', `a baseline named ${name} is already recorded: record a new one under another --name`, { kind: 'refused' });
    throw err;
  }
}

/** A recorded baseline, or BASELINE_UNKNOWN (bad input: the name was typed). */
export async function loadBaseline(pool: Pool, name: string): Promise<RecordedBaseline> {
  const { rows } = await readOnly(pool, (client) =>
    client.query<{ name: string; recorded_utc: Date; recorded_by: string; items: unknown }>(
      'SELECT name, recorded_utc, recorded_by, items FROM cutter_governance.g0_baseline WHERE name = $1',
      [name],
    ),
  );
  const row = rows[0];
  if (!row) throw new CutterError('BASELINE_UNKNOWN', `no baseline named ${name}: record one with cutter baseline record --name ${name}`, { kind: 'bad_input' });
  return { name: row.name, recorded_utc: row.recorded_utc.toISOString(), recorded_by: row.recorded_by, items: itemsSchema.parse(row.items) };
}

const shown = (item: string, count: number): string => (item === SWITCH_ITEM ? (count === 1 ? 'True' : 'False') : String(count));

/** An item as the report prints it: "public.information_unit: 158 (98 draft + 60 enacted)". */
export function itemText(i: G0Item): string {
  return `${i.item}: ${shown(i.item, i.count)}${i.detail ? ` (${i.detail})` : ''}`;
}

/** Now against the baseline, item by item, in the report's words: `<item>: <now> == baseline` or `!= baseline (was N)`. */
export function compareWithBaseline(baseline: G0Item[], now: G0Item[] | null): BaselineLine[] {
  return baseline.map((was) => {
    const is = now?.find((n) => n.item === was.item) ?? null;
    if (!is) return { item: was.item, now: null, baseline: was.count, equal: false, line: `${was.item}: not read != baseline (was ${shown(was.item, was.count)})` };
    const equal = is.count === was.count && is.hash === was.hash;
    const detail = is.detail ? (equal ? ` (${is.detail})` : `; now ${is.detail}`) : '';
    const why = equal
      ? ' == baseline'
      : is.count === was.count
        ? ` != baseline (was ${shown(was.item, was.count)}, same count, content changed)`
        : ` != baseline (was ${shown(was.item, was.count)})`;
    return { item: was.item, now: is.count, baseline: was.count, equal, line: `${was.item}: ${shown(is.item, is.count)}${why}${detail}` };
  });
}
