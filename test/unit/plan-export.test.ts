import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bodyDiff } from '../../shared/plan/body-diff.js';
import { canonicalFields, exportLine, headerLine, type PlanExportItem } from '../../shared/plan/export.js';
import { parsePlanQuery } from '../../shared/plan/plan-items.js';
import { planSha256 } from '../../shared/plan/hash.js';
import { readPlanExport } from '../../shared/plan/read-export.js';

/** The export's pure parts: its hash is plan_sha256 of shared/plan/hash.ts, its filters refuse bad values, diffs read right. */

const dir = mkdtempSync(join(tmpdir(), 'cutter-plan-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (c: string) => c.repeat(64);
const ITEMS: PlanExportItem[] = [
  { key: 'C/a-b', op: 'create', transition: 'new->draft', from_state: null, to_state: 'draft', from_version: null, to_version: 1, body_sha256_before: null, body_sha256_after: sha('1') },
  { key: 'C/aB', op: 'revise', transition: null, from_state: 'draft', to_state: 'draft', from_version: 3, to_version: 4, body_sha256_before: sha('2'), body_sha256_after: sha('3') },
  { key: 'C/ab', op: 'transition', transition: 'draft->enacted', from_state: 'draft', to_state: 'enacted', from_version: 1, to_version: 1, body_sha256_before: sha('4'), body_sha256_after: sha('4') },
];

describe('the plan export', () => {
  it('hashes to planSha256 of the same items (the one canonical form), in byte order of key', async () => {
    const expected = planSha256('C', ITEMS.map(canonicalFields));
    const file = join(dir, 'ok.ndjson');
    writeFileSync(file, headerLine({ run_id: 'r', target: 't', corpus: 'C', plan_sha256: expected, unit_count: 3 }) + ITEMS.map(exportLine).join(''));
    const r = await readPlanExport(file);
    expect(r.planSha256).toBe(expected);
    expect(r).toMatchObject({ items: 3, byOp: { create: 1, revise: 1, transition: 1 }, byTransition: { 'new->draft': 1, revise: 1, 'draft->enacted': 1 } });
    expect(r.firstKeys).toEqual({ create: ['C/a-b'], revise: ['C/aB'], transition: ['C/ab'] });
    // 'C/a-b' < 'C/aB' < 'C/ab' in byte order ('-' 0x2d, 'B' 0x42, 'b' 0x62): a dictionary order would differ.
    expect(ITEMS.map((i) => i.key)).toEqual(ITEMS.map((i) => i.key).sort());
  });

  it('refuses a bad filter, cursor or limit with its own code', () => {
    const limits = { limit: 10, maxLimit: 100 };
    expect(() => parsePlanQuery({ op: 'drop' }, limits)).toThrow(expect.objectContaining({ code: 'PLAN_OP_INVALID', kind: 'bad_input' }));
    expect(() => parsePlanQuery({ key: '/x' }, limits)).toThrow(expect.objectContaining({ code: 'PLAN_KEY_INVALID' }));
    expect(() => parsePlanQuery({ after: 'a b' }, limits)).toThrow(expect.objectContaining({ code: 'PLAN_CURSOR_INVALID' }));
    for (const limit of ['0', '101', '1.5', '-1', '1e2']) expect(() => parsePlanQuery({ limit }, limits)).toThrow(expect.objectContaining({ code: 'PLAN_LIMIT_INVALID' }));
    expect(parsePlanQuery({ op: 'revise', key: 'C/a', after: 'C/a-b', limit: '100' }, limits)).toEqual({ op: 'revise', keyPrefix: 'C/a', after: 'C/a-b', limit: 100 });
  });

  it('diffs a body: all added for a new unit, nothing for a transition alone', () => {
    const created = bodyDiff({ ...(ITEMS[0] as PlanExportItem), body_before: null, body_after: 'one\ntwo\n' });
    expect(created).toMatch(/^--- \/dev\/null\t/);
    expect(created).toContain('+one\n+two\n');
    expect(bodyDiff({ ...(ITEMS[2] as PlanExportItem), body_before: 'same\n', body_after: 'same\n' })).toBe('');
    const revised = bodyDiff({ ...(ITEMS[1] as PlanExportItem), body_before: 'a\nb\nc\n', body_after: 'a\nB\nc\n' });
    expect(revised).toContain('--- a/C/aB@v3');
    expect(revised).toContain(' a\n-b\n+B\n c\n');
  });
});
