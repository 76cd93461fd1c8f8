import type { Pool } from '../db/pool.js';
import { fingerprintTable, listGovernedTables } from '../runs/fingerprint.js';
import { readOnly } from './read-only.js';
import type { DbStateRow, StateValue } from './types.js';

/**
 * The check's proof that it changed nothing: every table of the corpus and
 * governance schemas, and the kill switch, fingerprinted before any other
 * check and again after all of them, each time in a transaction of its own
 * (so the second look sees whatever was committed in between, by anyone).
 */

/** The row label of the kill switch in the state table. */
export const SWITCH_ROW = 'execution_enabled()';

export interface DbSnapshot {
  /** Fingerprints by qualified table name. */
  tables: Map<string, { rows: number; hash: string }>;
  executionEnabled: boolean;
}

/** Fingerprints every governed table and reads execution_enabled(), read-only. */
export async function takeDbSnapshot(pool: Pool): Promise<DbSnapshot> {
  return readOnly(pool, async (client) => {
    const tables = new Map<string, { rows: number; hash: string }>();
    for (const name of await listGovernedTables(client)) {
      const f = await fingerprintTable(client, name);
      tables.set(name, { rows: f.rows, hash: f.hash });
    }
    const { rows } = await client.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
    return { tables, executionEnabled: rows[0]?.on ?? false };
  });
}

const same = (a: StateValue | null, b: StateValue | null): boolean => a !== null && b !== null && JSON.stringify(a) === JSON.stringify(b);

/**
 * Side by side, table by table (sorted), then the switch. A table present on
 * one side only is CHANGED; a missing `after` (the second look failed) is
 * CHANGED too, since nothing then proves it unchanged.
 */
export function compareDbState(before: DbSnapshot, after: DbSnapshot | null): DbStateRow[] {
  const names = [...new Set([...before.tables.keys(), ...(after?.tables.keys() ?? [])])].sort();
  const rows: DbStateRow[] = names.map((table) => {
    const b = before.tables.get(table) ?? null;
    const a = after?.tables.get(table) ?? null;
    return { table, before: b, after: a, unchanged: same(b, a) };
  });
  const b: StateValue = { value: before.executionEnabled };
  const a: StateValue | null = after ? { value: after.executionEnabled } : null;
  rows.push({ table: SWITCH_ROW, before: b, after: a, unchanged: same(b, a) });
  return rows;
}
