import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoKey, demoBody } from '../../shared/demo/corpus.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { digestAllTables, ndjson, scratchDir } from '../support/plan-fixtures.js';

const DEMO_TARGET = new URL('../../demo/icx-work.target.json', import.meta.url).pathname;
const DEMO_SNAPSHOT = new URL('../../demo/icx-work.snapshot.ndjson', import.meta.url).pathname;

let db: TestDatabase;
let env: Record<string, string>;
const files = scratchDir('cli-plan');

beforeAll(async () => {
  db = await createTestDatabase('cli_plan');
  // The demo seed keeps its sovereign's keys under $HOME/.cutter-demo.
  env = { DATABASE_URL: db.url, CUTTER_OPERATOR: 'alice', HOME: files.path('home') };
  const seeded = await runCli(['demo', 'seed'], env);
  expect(seeded.code, seeded.stderr).toBe(0);
});
afterAll(async () => {
  await db.drop();
  files.cleanup();
});

describe('cutter target', () => {
  it('register prints each criterion and registers the demo target (exit 0); a second time exits 1', async () => {
    const r = await runCli(['target', 'register', '--file', DEMO_TARGET], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, 4)).toEqual([
      'C1 PASS registration file complete and valid',
      'C2 PASS corpus ICX-WORK has 98 unit(s)',
      'C3 PASS corpus ICX-WORK is not protected by any target',
      'C4 PASS no run holds corpus ICX-WORK',
    ]);
    expect(r.stdout).toContain('registered target icx-work (corpus ICX-WORK, max_units 500, transitions new->draft, draft->enacted, revise) by alice');
    const again = await runCli(['target', 'register', '--file', DEMO_TARGET], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/^C1 FAIL target icx-work is already registered/);
    expect(again.stderr.trim()).toBe('cutter: target not registered: C1 failed [TARGET_REFUSED]');
  });

  it('register refuses a file with an unknown field (exit 1, nothing else checked) and a missing file (exit 2)', async () => {
    const reg = { ...JSON.parse(readFileSync(DEMO_TARGET, 'utf8')), name: 'icx-typo', protectd: true } as Record<string, unknown>;
    const before = await digestAllTables(db.pool);
    const r = await runCli(['target', 'register', '--file', files.write('typo.json', JSON.stringify(reg))], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^C1 FAIL registration file invalid: unknown field "protectd"/);
    expect(r.stdout).toContain('C2 SKIP not checked: C1 failed');
    expect(await digestAllTables(db.pool)).toEqual(before);
    const missing = await runCli(['target', 'register', '--file', files.path('nope.json')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.json does not exist \[TARGET_FILE_UNREADABLE\]/);
  });

  it('list and show', async () => {
    const list = await runCli(['target', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const { targets } = JSON.parse(list.stdout) as { targets: { name: string; protected: boolean; registered_by: string }[] };
    // icx-const-enactment: the demo history's enactment target (docs/design.md §2).
    expect(targets.map((t) => [t.name, t.protected])).toEqual([
      ['icx-const', true],
      ['icx-const-enactment', false],
      ['icx-work', false],
    ]);
    const text = await runCli(['target', 'list'], env);
    expect(text.stdout.split('\n')[0]).toMatch(/^name\s+corpus\s+protected\s+max_units/);
    const show = await runCli(['target', 'show', 'icx-work'], env);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^allowed_transitions\s+new->draft, draft->enacted, revise$/m);
    expect(show.stdout).toMatch(/^registered_by\s+alice$/m);
    const unknown = await runCli(['target', 'show', 'nope'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no target nope is registered.*\[TARGET_UNKNOWN\]/);
  });
});

describe('cutter plan', () => {
  it('plans the demo snapshot: 55 units (40 draft->enacted, 5 revise, 10 new->draft)', async () => {
    const r = await runCli(['plan', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^C5 PASS snapshot valid: 55 record\(s\)/m);
    expect(r.stdout).toMatch(/^C6 PASS 55 unit\(s\), within max_units 500/m);
    expect(r.stdout).toMatch(/^unit_count\s+55$/m);
    expect(r.stdout).toMatch(/^by_op\s+create 10, revise 5, transition 40$/m);
    expect(r.stdout).toMatch(/^by_transition\s+draft->enacted 40, new->draft 10, revise 5$/m);

    const json = await runCli(['plan', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--json'], env);
    expect(json.code).toBe(0);
    const plan = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(plan).toMatchObject({
      ok: true,
      target: 'icx-work',
      mode: 'live',
      unit_count: 55,
      by_op: { create: 10, revise: 5, transition: 40 },
      by_transition: { 'draft->enacted': 40, 'new->draft': 10, revise: 5 },
      error: null,
    });
    expect(plan['plan_sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(r.stdout).toContain(`plan_sha256    ${String(plan['plan_sha256'])}`);
    expect((plan['criteria'] as { id: string; pass: boolean }[]).map((c) => `${c.id}:${String(c.pass)}`)).toEqual(['C2:true', 'C3:true', 'C4:true', 'C5:true', 'C6:true']);
  });

  it('the same lines in another order give the same plan_sha256', async () => {
    const lines = readFileSync(DEMO_SNAPSHOT, 'utf8').trim().split('\n').reverse();
    const hash = async (path: string) => (JSON.parse((await runCli(['plan', '--target', 'icx-work', '--snapshot', path, '--json'], env)).stdout) as { plan_sha256: string }).plan_sha256;
    expect(await hash(files.write('reversed.ndjson', `${lines.join('\n')}\n`))).toBe(await hash(DEMO_SNAPSHOT));
  });

  it('leaves every table, corpus and governance, exactly as it was', async () => {
    const before = await digestAllTables(db.pool);
    expect(Object.keys(before)).toEqual(expect.arrayContaining(['public.information_unit', 'public.unit_version', 'cutter_governance.run', 'cutter_governance.snapshot_record', 'cutter_governance.cut_change_set', 'cutter_governance.cut_change_item', 'cutter_governance.audit_event']));
    const ok = await runCli(['plan', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT], env);
    expect(ok.code).toBe(0);
    const refused = await runCli(['plan', '--target', 'icx-const', '--snapshot', DEMO_SNAPSHOT], env);
    expect(refused.code).toBe(1);
    const invalid = await runCli(['plan', '--target', 'icx-work', '--snapshot', files.write('bad.ndjson', '{"key":"ICX-WORK/001"}\n')], env);
    expect(invalid.code).toBe(2);
    expect(await digestAllTables(db.pool)).toEqual(before);
  });

  it('the protected target icx-const: a live plan is refused by C3 (exit 1); a dry one is not', async () => {
    const constSnapshot = files.write(
      'const.ndjson',
      ndjson([{ key: demoKey('ICX-CONST', 1), state: 'enacted', body: demoBody(demoKey('ICX-CONST', 1), 2) }]),
    );
    const live = await runCli(['plan', '--target', 'icx-const', '--snapshot', constSnapshot], env);
    expect(live.code).toBe(1);
    expect(live.stdout).toMatch(/^C3 FAIL target icx-const is protected: a protected corpus is never cut live/m);
    expect(live.stdout).not.toMatch(/plan_sha256/);
    expect(live.stderr).toMatch(/\[C3_PROTECTED\]$/m);
    const asJson = await runCli(['plan', '--target', 'icx-const', '--snapshot', constSnapshot, '--mode', 'live', '--json'], env);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ ok: false, plan_sha256: null, error: { code: 'C3_PROTECTED' } });
    const dry = await runCli(['plan', '--target', 'icx-const', '--snapshot', constSnapshot, '--mode', 'dry'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^by_op\s+revise 1$/m);
  });

  it('an invalid snapshot exits 2 and lists each issue with its line and field', async () => {
    const bad = files.write('two-bad.ndjson', ndjson([
      { key: 'ICX-WORK/001', state: 'enacted', body: 'x' },
      { key: 'ICX-CONST/001', state: 'enacted', body: 'x' },
      { key: 'ICX-WORK/003', state: 'live', body: 'x' },
    ]));
    const r = await runCli(['plan', '--target', 'icx-work', '--snapshot', bad], env);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^C5 FAIL snapshot invalid: 2 issue\(s\), nothing staged$/m);
    expect(r.stderr).toContain('line 2: field "key": key "ICX-CONST/001" belongs to corpus ICX-CONST');
    expect(r.stderr).toContain('line 3: field "state": unknown state "live"');
    expect(r.stderr).toMatch(/\[SNAPSHOT_INVALID\]$/m);
  });

  it('a plan beyond the allowance is refused by C6 (exit 1); forbidden transitions too, naming the keys', async () => {
    const tooMany = files.write('too-many.ndjson', ndjson(Array.from({ length: 98 }, (_, i) => ({ key: demoKey('ICX-WORK', i + 1), state: 'retired', body: demoBody(demoKey('ICX-WORK', i + 1), 1) }))));
    const r = await runCli(['plan', '--target', 'icx-work', '--snapshot', tooMany], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^C6 FAIL the plan exceeds target icx-work's allowance: transitions not in allowed_transitions .*: draft->retired \(98 units\)$/m);
    expect(r.stderr).toMatch(/\[C6_ALLOWANCE\]$/m);
    await db.pool.query(`UPDATE public.information_unit SET state = 'enacted' WHERE key = 'ICX-WORK/098'`);
    try {
      const back = files.write('back.ndjson', ndjson([{ key: 'ICX-WORK/098', state: 'draft', body: demoBody('ICX-WORK/098', 1) }]));
      const f = await runCli(['plan', '--target', 'icx-work', '--snapshot', back], env);
      expect(f.code).toBe(1);
      expect(f.stderr).toMatch(/ICX-WORK\/098 enacted->draft.*\[PLAN_FORBIDDEN_TRANSITION\]/);
    } finally {
      await db.pool.query(`UPDATE public.information_unit SET state = 'draft' WHERE key = 'ICX-WORK/098'`);
    }
  });

  it('an unknown target or a missing snapshot is bad input (exit 2)', async () => {
    const unknown = await runCli(['plan', '--target', 'nope', '--snapshot', DEMO_SNAPSHOT], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no target nope/);
    const missing = await runCli(['plan', '--target', 'icx-work', '--snapshot', files.path('missing.ndjson')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.ndjson does not exist \[SNAPSHOT_NOT_FOUND\]/);
  });
});
