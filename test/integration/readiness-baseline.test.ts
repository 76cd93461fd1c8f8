import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Readiness } from '../../shared/readiness/types.js';
import { runAppliedLive, trustLocalSovereign } from '../support/applied-run.js';
import { runCli } from '../support/cli.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * `cutter baseline record` then `cutter readiness --baseline`: the database
 * re-verified against a recorded G0 state, line by line, as the G8 report
 * does. Unchanged, every line holds and the report says ZERO persistent
 * production mutation; after a live cut the lines it changed say what they
 * were, and g8 fails: the baseline no longer describes the database.
 */

let env: RunEnv;
let sovereign: ReturnType<typeof trustLocalSovereign>;
beforeAll(async () => {
  env = await createRunEnv('rdybase');
  sovereign = trustLocalSovereign(env);
  await env.startFleet();
}, 120_000);
afterAll(async () => {
  await env?.close();
});

const G0_ITEMS = [
  'public.information_unit',
  'public.unit_version',
  'public.iu_lifecycle_log',
  'cutter_governance.cut_change_set',
  'cutter_governance.review_decision',
  'cutter_governance.verify_result',
  'enacted units',
  'execution_enabled()',
];

async function readiness(args: string[]): Promise<{ code: number; report: Readiness; md: string }> {
  const json = await runCli(['readiness', '--target', 'icx-work', '--format', 'json', ...args], env.env);
  const md = await runCli(['readiness', '--target', 'icx-work', ...args], env.env);
  expect(md.code).toBe(json.code);
  return { code: json.code, report: JSON.parse(json.stdout) as Readiness, md: md.stdout };
}

describe('readiness against a recorded G0 baseline', () => {
  it('records the G0 items once per name, audited', async () => {
    const recorded = await runCli(['baseline', 'record', '--name', 'G0', '--json'], env.env);
    expect(recorded.code, recorded.stderr).toBe(0);
    const body = JSON.parse(recorded.stdout) as { name: string; items: { item: string; count: number; detail: string | null }[] };
    expect(body.items.map((i) => i.item)).toEqual(G0_ITEMS);
    expect(body.items[0]).toMatchObject({ item: 'public.information_unit', count: 158, detail: '98 draft + 60 enacted' });
    expect(body.items.find((i) => i.item === 'enacted units')?.count).toBe(60);
    const audit = await env.db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM cutter_governance.audit_event WHERE kind = 'baseline.recorded' AND detail->>'name' = 'G0'`);
    expect(audit.rows[0]?.n).toBe(1);

    const again = await runCli(['baseline', 'record', '--name', 'G0'], env.env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/a baseline named G0 is already recorded.*\[BASELINE_EXISTS\]/);
    const bad = await runCli(['baseline', 'record', '--name', '../x'], env.env);
    expect(bad.code).toBe(2);
    const unknown = await runCli(['readiness', '--baseline', 'nope'], env.env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no baseline named nope.*\[BASELINE_UNKNOWN\]/);
  });

  it('with nothing changed: every line == baseline, ZERO persistent production mutation, g8 PASS', async () => {
    const { code, report, md } = await readiness(['--baseline', 'G0']);
    expect(code).toBe(0);
    expect([report.g8, report.production_mutation, report.execution_enabled]).toEqual(['PASS', 'NONE', false]);
    expect(report.baseline?.holds).toBe(true);
    expect(report.baseline?.lines.map((l) => l.line)).toEqual([
      'public.information_unit: 158 == baseline (98 draft + 60 enacted)',
      expect.stringMatching(/^public\.unit_version: \d+ == baseline$/),
      expect.stringMatching(/^public\.iu_lifecycle_log: \d+ == baseline$/),
      expect.stringMatching(/^cutter_governance\.cut_change_set: \d+ == baseline$/),
      expect.stringMatching(/^cutter_governance\.review_decision: \d+ == baseline$/),
      expect.stringMatching(/^cutter_governance\.verify_result: \d+ == baseline$/),
      'enacted units: 60 == baseline',
      'execution_enabled(): False == baseline',
    ]);
    expect(md).toContain('Re-verified against the recorded G0 baseline **G0**');
    expect(md).toContain('public.information_unit: 158 == baseline (98 draft + 60 enacted)');
    expect(md).toContain('**ZERO persistent production mutation.**');
  });

  it('after a live cut: the lines it changed are != baseline with the old value, and g8 FAILs', async () => {
    const before = await readiness(['--baseline', 'G0']);
    const was = (item: string) => before.report.baseline?.lines.find((l) => l.item === item)?.baseline;
    await runAppliedLive(env, sovereign);
    const { code, report, md } = await readiness(['--baseline', 'G0']);
    expect(code).toBe(1);
    expect([report.g8, report.production_mutation, report.ready_for_live_run]).toEqual(['FAIL', 'CHANGED', 'no (g8 FAIL)']);
    const line = (item: string) => report.baseline?.lines.find((l) => l.item === item)?.line;
    // The demo snapshot enacts 40 drafts, revises 5 and adds 10 drafts.
    expect(line('public.information_unit')).toBe('public.information_unit: 168 != baseline (was 158); now 68 draft + 100 enacted');
    expect(line('enacted units')).toBe('enacted units: 100 != baseline (was 60)');
    for (const item of ['public.unit_version', 'public.iu_lifecycle_log', 'cutter_governance.cut_change_set', 'cutter_governance.review_decision', 'cutter_governance.verify_result']) {
      expect(line(item), item).toMatch(new RegExp(`^${item.replace('.', '\\.')}: \\d+ != baseline \\(was ${was(item) ?? '?'}\\)$`));
    }
    expect(line('execution_enabled()')).toBe('execution_enabled(): False == baseline');
    expect(md).not.toContain('ZERO persistent production mutation');
    expect(md).toContain('**Production state differs from baseline G0.**');
  }, 180_000);
});
