import type { Pool } from '../db/pool.js';
import { withTransaction } from '../db/pool.js';
import { appendAudit } from '../audit/append.js';
import { DEMO_PROTECTED, DEMO_WORK_TARGET, demoUnits, sha256Hex } from './corpus.js';

export interface SeedResult {
  unitsInserted: number;
  targetRegistered: boolean;
}

/**
 * Loads the demo corpus. Idempotent: a unit that exists is left as it is, so
 * a second seed (or a seed after a demo run) inserts nothing.
 */
export async function seedDemo(pool: Pool, actor: string): Promise<SeedResult> {
  const units = demoUnits();
  return withTransaction(pool, async (client) => {
    const inserted = await client.query<{ id: number; key: string; corpus: string; state: string }>(
      `INSERT INTO public.information_unit (corpus, key, state, current_version)
       SELECT u.corpus, u.key, u.state, 1 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(corpus, key, state)
       ON CONFLICT (corpus, key) DO NOTHING
       RETURNING id, key, corpus, state`,
      [units.map((u) => u.corpus), units.map((u) => u.key), units.map((u) => u.state)],
    );
    const byKey = new Map(units.map((u) => [u.key, u]));
    const rows = inserted.rows;
    await client.query(
      `INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
       SELECT v.unit_id, 1, v.body, v.sha, NULL FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(unit_id, body, sha)`,
      [rows.map((r) => r.id), rows.map((r) => byKey.get(r.key)?.body ?? ''), rows.map((r) => sha256Hex(byKey.get(r.key)?.body ?? ''))],
    );
    await client.query(
      `INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor)
       SELECT l.unit_id, NULL, l.state, 1, NULL, $3 FROM unnest($1::bigint[], $2::text[]) AS l(unit_id, state)`,
      [rows.map((r) => r.id), rows.map((r) => r.state), actor],
    );
    const target = await client.query(
      `INSERT INTO cutter_governance.target_registry
         (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
       VALUES ($1, $2, 'constitution-office', true, $3, ARRAY['revise']::text[], $4, 'Demo protected corpus: never cut live.')
       ON CONFLICT (name) DO NOTHING`,
      [DEMO_PROTECTED.target, DEMO_PROTECTED.corpus, DEMO_PROTECTED.count, actor],
    );
    if (rows.length > 0 || target.rowCount) {
      await appendAudit(client, {
        actor,
        kind: 'demo.seed',
        detail: { units_inserted: rows.length, target_registered: Boolean(target.rowCount) },
      });
    }
    return { unitsInserted: rows.length, targetRegistered: Boolean(target.rowCount) };
  });
}

/**
 * Registers the demo working target (demo/icx-work.target.json) for the demo
 * run, as `cutter target register` would after its checks; idempotent.
 */
export async function registerDemoWorkTarget(pool: Pool, actor: string): Promise<boolean> {
  const t = DEMO_WORK_TARGET;
  const result = await pool.query(
    `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING`,
    [t.name, t.corpus, t.owner, t.protected, t.max_units, t.allowed_transitions, actor, t.notes],
  );
  return Boolean(result.rowCount);
}

export interface CorpusSummaryRow {
  corpus: string;
  state: string;
  units: number;
  versions: number;
}

/** Units and versions per corpus and state. */
export async function corpusSummary(pool: Pool): Promise<CorpusSummaryRow[]> {
  const result = await pool.query<CorpusSummaryRow>(
    `SELECT u.corpus, u.state, count(*)::int AS units,
            (SELECT count(*)::int FROM public.unit_version v JOIN public.information_unit u2 ON u2.id = v.unit_id
              WHERE u2.corpus = u.corpus AND u2.state = u.state) AS versions
       FROM public.information_unit u GROUP BY u.corpus, u.state ORDER BY u.corpus, u.state`,
  );
  return result.rows;
}
