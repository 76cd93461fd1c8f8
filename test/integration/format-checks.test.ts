import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * Migration 014 rewrote the format CHECKs without bounded regex repetitions
 * (a cost per row, not a change of rules). Each constraint as the database
 * now holds it must accept exactly the strings its original pattern (001–003)
 * accepted: checked over edge lengths and near-miss strings generated in SQL.
 */

const ORIGINAL: { table: string; constraint: string; column: string; pattern: string }[] = [
  { table: 'public.information_unit', constraint: 'information_unit_corpus_check', column: 'corpus', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' },
  { table: 'public.information_unit', constraint: 'information_unit_key_check', column: 'key', pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$' },
  { table: 'cutter_governance.target_registry', constraint: 'target_registry_corpus_check', column: 'corpus', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' },
  { table: 'cutter_governance.target_registry', constraint: 'target_registry_name_check', column: 'name', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
  { table: 'cutter_governance.run', constraint: 'run_run_id_check', column: 'run_id', pattern: '^[A-Za-z0-9_-]{8,64}$' },
  { table: 'cutter_governance.run', constraint: 'run_snapshot_sha256_check', column: 'snapshot_sha256', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.cut_change_set', constraint: 'cut_change_set_plan_sha256_check', column: 'plan_sha256', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.cut_change_item', constraint: 'cut_change_item_pre_body_sha256_check', column: 'pre_body_sha256', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.cut_change_item', constraint: 'cut_change_item_post_body_sha256_check', column: 'post_body_sha256', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.review_decision', constraint: 'review_decision_key_id_check', column: 'key_id', pattern: '^[0-9a-f]{16}$' },
  { table: 'cutter_governance.review_decision', constraint: 'review_decision_nonce_check', column: 'nonce', pattern: '^[0-9a-f]{32}$' },
  { table: 'cutter_governance.review_decision', constraint: 'review_decision_plan_sha256_check', column: 'plan_sha256', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.execution_ledger', constraint: 'execution_ledger_plan_sha256_check', column: 'plan_sha256', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.audit_event', constraint: 'audit_event_prev_hash_check', column: 'prev_hash', pattern: '^[0-9a-f]{64}$' },
  { table: 'cutter_governance.audit_event', constraint: 'audit_event_hash_check', column: 'hash', pattern: '^[0-9a-f]{64}$' },
];

/**
 * Candidate strings: for every length near a bound, a valid-looking string
 * (drawn from the allowed characters) with, in most rows, one character
 * swapped for a near miss (upper case hex, g, space, newline, punctuation the
 * pattern leaves out, a non-ASCII letter), plus the empty string and NULL.
 */
const CANDIDATES = `
  WITH lengths(n) AS (VALUES (0),(1),(2),(7),(8),(9),(15),(16),(17),(31),(32),(33),(63),(64),(65),(99),(100),(101),(199),(200),(201)),
       alphabets(chars) AS (VALUES ('0123456789abcdef'), ('0123456789abcdefABCDEFxyz'), ('AZaz09._:/-'), ('Aa0_-')),
       misses(m) AS (VALUES (NULL), ('A'), ('F'), ('g'), (' '), (E'\\n'), ('$'), ('*'), ('+'), ('é'), ('.'), (':'), ('/'), ('_'), ('-')),
       base AS (
         SELECT n, m, string_agg(substr(chars, 1 + ((i * 7 + n * 3 + length(chars)) % length(chars)), 1), '' ORDER BY i) AS s
           FROM lengths, alphabets, misses, generate_series(1, greatest(n, 1)) i
          GROUP BY n, m, chars)
  SELECT CASE WHEN n = 0 THEN '' WHEN m IS NULL THEN s
              ELSE overlay(s PLACING m FROM 1 + (n * 5 % n) FOR 1) END AS s FROM base
  UNION ALL SELECT overlay(s PLACING m FROM n FOR 1) FROM base WHERE n > 0 AND m IS NOT NULL
  UNION ALL SELECT NULL`;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('format-checks');
});
afterAll(async () => {
  await db.drop();
});

describe('format CHECKs (migration 010)', () => {
  it.each(ORIGINAL)('$constraint accepts exactly what $pattern accepted', async ({ table, constraint, column, pattern }) => {
    const { rows: defs } = await db.pool.query<{ expr: string }>(
      'SELECT pg_get_expr(conbin, conrelid) AS expr FROM pg_constraint WHERE conname = $1 AND conrelid = $2::regclass',
      [constraint, table],
    );
    const expr = defs[0]?.expr;
    expect(expr, `${constraint} exists on ${table}`).toBeDefined();
    // The rewrite is the point: no bounded repetition left to expand per row.
    expect(expr).not.toMatch(/\{\d+(,\d*)?\}/);
    // The constraint's own expression, read back from the catalogue, evaluated on each candidate (a CHECK passes on NULL).
    const own = (expr ?? '').replace(new RegExp(`\\b${column}\\b`, 'g'), 'c.s');
    const { rows } = await db.pool.query<{ total: number; accepted: number; differ: string[] }>(
      `SELECT count(*)::int AS total,
              count(*) FILTER (WHERE coalesce(${own}, true))::int AS accepted,
              coalesce(array_agg(quote_nullable(c.s)) FILTER (WHERE coalesce(c.s ~ $1, true) <> coalesce(${own}, true)), '{}') AS differ
         FROM (${CANDIDATES}) c`,
      [pattern],
    );
    const result = rows[0];
    expect(result?.differ).toEqual([]);
    // The candidates reach both sides of the rule.
    expect(result?.accepted).toBeGreaterThan(0);
    expect(result?.accepted).toBeLessThan(result?.total ?? 0);
  });

  it('still refuses a bad hash and a bad key with check_violation', async () => {
    const code = async (sql: string) => db.pool.query(sql).then(() => 'ok', (err: { code?: string }) => err.code);
    expect(await code(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('A', 'A/' || repeat('x', 199), 'draft', 1)`)).toBe('23514');
    expect(await code(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('A', 'A/' || repeat('x', 198), 'draft', 1)`)).toBe('ok');
    expect(await code(`INSERT INTO information_unit (corpus, key, state, current_version) VALUES ('A', '-A/1', 'draft', 1)`)).toBe('23514');
  });
});
