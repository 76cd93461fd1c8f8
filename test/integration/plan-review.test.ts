import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import type { PlanExportItem } from '../../shared/plan/export.js';
import { plannedRun, type BigPlan } from '../support/big-plan.js';
import { runCli } from '../support/cli.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * Plan review (docs/plan-review.md) of a 10,000-item plan built by the real
 * discover + cutplan code: `cutter plan show` and `cutter plan hash`, the
 * plan API and export, and `cutter approval sign` showing the plan and
 * signing offline from an export.
 */

const N = 10_000;
const credentials = { user: 'admin', password: 'plan-review-secret' };

type Item = PlanExportItem;

let env: RunEnv;
let board: BoardServer;
let plan: BigPlan;
let exportFile: string;
let exportText: string;
/** The CLI's environment with no reachable database, Redis or board: what an offline machine has. */
let offlineEnv: Record<string, string>;

beforeAll(async () => {
  env = await createRunEnv('planreview');
  plan = await plannedRun(env.db.pool, { n: N, corpus: 'REVIEW', target: 'review', file: join(env.dir, 'snapshot.ndjson') });
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials, options: { sweepIntervalMs: 60_000 } });
  const shown = await runCli(['plan', 'show', plan.runId, '--format', 'ndjson'], env.env);
  expect(shown.code, shown.stderr).toBe(0);
  exportText = shown.stdout;
  exportFile = join(env.dir, 'plan.ndjson');
  writeFileSync(exportFile, exportText);
  offlineEnv = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1', CUTTER_API_URL: 'http://127.0.0.1:1', LOG_LEVEL: 'silent' };
}, 180_000);
afterAll(async () => {
  await board?.close();
  await env?.close();
});

const lines = (text: string) => text.split('\n').filter((l) => l !== '');
const items = (text: string) => lines(text).slice(1).map((l) => JSON.parse(l) as Item);
function edited(name: string, edit: (ls: string[]) => string[]): string {
  const file = join(env.dir, name);
  writeFileSync(file, `${edit(lines(exportText)).join('\n')}\n`);
  return file;
}

describe('cutter plan show and cutter plan hash', () => {
  it('exports the whole plan: a header naming the run and its hash, then every item in byte order of key', () => {
    const [header, ...rest] = lines(exportText);
    expect(JSON.parse(header ?? '')).toEqual({ cutter_plan: 'cutter-plan-v1', run_id: plan.runId, target: 'review', corpus: 'REVIEW', plan_sha256: plan.planSha256, unit_count: N });
    expect(rest).toHaveLength(N);
    const keys = items(exportText).map((i) => i.key);
    expect(keys).toEqual([...keys].sort());
    expect(new Set(keys).size).toBe(N);
    const ops = new Set(items(exportText).map((i) => i.op));
    expect([...ops].sort()).toEqual(['create', 'revise', 'revise+transition', 'transition']);
    // A unit as the corpus and the snapshot say: REVIEW/000002 (i % 3 = 2) is enacted and revised, version 1 → 2.
    expect(items(exportText).find((i) => i.key === 'REVIEW/000002')).toMatchObject({
      op: 'revise+transition',
      transition: 'draft->enacted',
      from_state: 'draft',
      to_state: 'enacted',
      from_version: 1,
      to_version: 2,
    });
  });

  it('plan hash recomputes the run’s plan_sha256 from the export, offline', async () => {
    const hashed = await runCli(['plan', 'hash', exportFile], offlineEnv);
    expect(hashed.code, hashed.stderr).toBe(0);
    expect(hashed.stdout.split('\n')[0]).toBe(`${plan.planSha256}  ${exportFile}`);
    expect(hashed.stdout).toContain(`matches the header: run ${plan.runId}, target review, ${N} items`);
  });

  it('one changed, dropped or added line changes the hash; the export is refused', async () => {
    const changed = edited('changed.ndjson', (ls) => ls.map((l, i) => (i === 5000 ? l.replace('"to_version":2', '"to_version":3') : l)));
    expect(readFileSync(changed, 'utf8')).not.toBe(exportText);
    const dropped = edited('dropped.ndjson', (ls) => ls.filter((_, i) => i !== 777));
    const created = JSON.parse(lines(exportText)[N] ?? '') as Item;
    const added = edited('added.ndjson', (ls) => [...ls, JSON.stringify({ ...created, key: 'REVIEW/999999' })]);
    const seen = new Set<string>();
    for (const file of [changed, dropped, added]) {
      const r = await runCli(['plan', 'hash', file], offlineEnv);
      expect(r.code, `${file}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/\[PLAN_EXPORT_MISMATCH\]/);
      const printed = r.stdout.split('  ')[0] ?? '';
      expect(printed).toMatch(/^[0-9a-f]{64}$/);
      expect(printed).not.toBe(plan.planSha256);
      seen.add(printed);
    }
    expect(seen.size).toBe(3);
  });

  it('refuses with a line number a malformed line, a repeated key, keys out of order, and a missing file', async () => {
    const cases: [string, string[], RegExp][] = [
      ['not JSON', ['not json'], /line 2: not JSON/],
      ['extra field', [JSON.stringify({ ...(JSON.parse(lines(exportText)[1] ?? '') as Item), note: 'x' })], /line 2: not a plan item/],
    ];
    for (const [name, extra, message] of cases) {
      const file = edited(`${name}.ndjson`, (ls) => [ls[0] ?? '', ...extra, ...ls.slice(2)]);
      const r = await runCli(['plan', 'hash', file], offlineEnv);
      expect(r.code, name).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/\[PLAN_EXPORT_INVALID\]/);
    }
    const repeated = edited('repeated.ndjson', (ls) => [...ls.slice(0, 11), ls[10] ?? '', ...ls.slice(11)]);
    const rep = await runCli(['plan', 'hash', repeated], offlineEnv);
    expect(rep.code).toBe(2);
    expect(rep.stderr).toMatch(/line 12: key REVIEW\/000010 appears twice/);
    const swapped = edited('swapped.ndjson', (ls) => [...ls.slice(0, 3), ls[4] ?? '', ls[3] ?? '', ...ls.slice(5)]);
    const swap = await runCli(['plan', 'hash', swapped], offlineEnv);
    expect(swap.code).toBe(2);
    expect(swap.stderr).toMatch(/line 5: key REVIEW\/000003 comes after REVIEW\/000004/);
    const missing = await runCli(['plan', 'hash', join(env.dir, 'nope.ndjson')], offlineEnv);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/\[FILE_UNREADABLE\]/);
  });

  it('filters by op and key prefix, limits, and prints table, csv and ndjson', async () => {
    const csv = await runCli(['plan', 'show', plan.runId, '--op', 'create', '--key', 'REVIEW/0099', '--limit', '3', '--format', 'csv'], env.env);
    expect(csv.code, csv.stderr).toBe(0);
    expect(lines(csv.stdout)).toEqual([
      'key,op,transition,from_state,to_state,from_version,to_version,body_sha256_before,body_sha256_after',
      ...items(exportText)
        .filter((i) => i.op === 'create' && i.key.startsWith('REVIEW/0099'))
        .slice(0, 3)
        .map((i) => `${i.key},create,new->draft,,draft,,1,,${i.body_sha256_after}`),
    ]);
    const table = await runCli(['plan', 'show', plan.runId, '--op', 'transition', '--limit', '2'], env.env);
    expect(table.code, table.stderr).toBe(0);
    const rows = lines(table.stdout).map((l) => l.split('\t'));
    expect(rows[0]).toEqual(['key', 'op', 'transition', 'from_state', 'to_state', 'from_version', 'to_version', 'body_sha256_before', 'body_sha256_after']);
    // transition selects transition and revise+transition items.
    expect(rows.slice(1).map((r) => [r[0], r[1]])).toEqual([
      ['REVIEW/000002', 'revise+transition'],
      ['REVIEW/000003', 'transition'],
    ]);
    const nd = await runCli(['plan', 'show', plan.runId, '--key', 'REVIEW/00001', '--format', 'ndjson'], env.env);
    expect(nd.code, nd.stderr).toBe(0);
    // A filtered listing is items only: no header, so it can never pass for the whole export.
    // Its lines (JSON.stringify in Node) equal the export's (built by PostgreSQL) byte for byte, nulls of new units included.
    expect(lines(nd.stdout)).toEqual(lines(exportText).filter((l) => l.includes('"key":"REVIEW/00001')));
    const created = await runCli(['plan', 'show', plan.runId, '--op', 'create', '--limit', '3', '--format', 'ndjson'], env.env);
    expect(lines(created.stdout)).toEqual(lines(exportText).filter((l) => l.includes('"op":"create"')).slice(0, 3));
    expect(lines(created.stdout)[0]).toContain('"from_state":null,"to_state":"draft","from_version":null,"to_version":1,"body_sha256_before":null,');
  });

  it('--diff shows each unit body before and after as a unified diff', async () => {
    const r = await runCli(['plan', 'show', plan.runId, '--key', 'REVIEW/000001', '--diff'], env.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('--- a/REVIEW/000001@v1');
    expect(r.stdout).toContain('+++ b/REVIEW/000001@v2');
    expect(r.stdout).toContain('    -Its rule, as of version 1.');
    expect(r.stdout).toContain('    +Its rule, as of version 2.');
    expect(r.stdout).toContain("     The unit's purpose, unchanged.");
    const transitionOnly = await runCli(['plan', 'show', plan.runId, '--key', 'REVIEW/000003', '--diff', '--format', 'ndjson'], env.env);
    expect(JSON.parse(lines(transitionOnly.stdout)[0] ?? '')).toMatchObject({ key: 'REVIEW/000003', op: 'transition', diff: '' });
  });

  it('refuses bad options and unknown runs with a clear code, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['plan', 'show', plan.runId, '--op', 'delete'], /\[PLAN_OP_INVALID\]/],
      [['plan', 'show', plan.runId, '--key', '../etc'], /\[PLAN_KEY_INVALID\]/],
      [['plan', 'show', plan.runId, '--limit', '0'], /\[PLAN_LIMIT_INVALID\]/],
      [['plan', 'show', plan.runId, '--format', 'xml'], /argument 'xml' is invalid\. Allowed choices are table, ndjson, csv/],
      [['plan', 'show', 'run-20000101-000000-000000'], /\[RUN_UNKNOWN\]/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, env.env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // The preview keeps its own options, and still requires them.
    const preview = await runCli(['plan', '--target', 'review'], env.env);
    expect(preview.code).toBe(2);
    expect(preview.stderr).toContain("required option '--snapshot <file>' not specified");
  });
});

describe('the plan over HTTP', () => {
  it('pages through every item by key, 1,000 at a time, with filters', async () => {
    const seen: Item[] = [];
    let after: string | null = '';
    let pages = 0;
    while (after !== null) {
      const res = await fetch(`${board.url}/runs/${plan.runId}/plan?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: Item[]; next: string | null };
      seen.push(...body.items);
      after = body.next;
      pages += 1;
    }
    expect(pages).toBe(10);
    expect(seen).toEqual(items(exportText));
    const filtered = (await (await fetch(`${board.url}/runs/${plan.runId}/plan?op=revise&key=REVIEW/00000&limit=3`)).json()) as { items: Item[]; next: string };
    expect(filtered.items.map((i) => [i.key, i.op])).toEqual([
      ['REVIEW/000001', 'revise'],
      ['REVIEW/000002', 'revise+transition'],
      ['REVIEW/000004', 'revise'],
    ]);
    expect(filtered.next).toBe('REVIEW/000004');
  });

  it('answers 400 to a bad filter and 404 to an unknown run or unit', async () => {
    const bad = await fetch(`${board.url}/runs/${plan.runId}/plan?limit=5000`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('PLAN_LIMIT_INVALID');
    const unknown = await fetch(`${board.url}/runs/run-20000101-000000-000000/plan`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('RUN_UNKNOWN');
    const noUnit = await fetch(`${board.url}/runs/${plan.runId}/plan/REVIEW/999999`);
    expect(noUnit.status).toBe(404);
    expect(((await noUnit.json()) as { error: { code: string } }).error.code).toBe('PLAN_ITEM_UNKNOWN');
  });

  it('plan.ndjson streams the same export, byte for byte', async () => {
    const res = await fetch(`${board.url}/runs/${plan.runId}/plan.ndjson`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(await res.text()).toBe(exportText);
  });

  it('shows one unit with its body diff, as JSON and as a page', async () => {
    const json = (await (await fetch(`${board.url}/runs/${plan.runId}/plan/REVIEW/000001`)).json()) as Item & { body_before: string; body_after: string; diff: string };
    expect(json).toMatchObject({ key: 'REVIEW/000001', op: 'revise', from_version: 1, to_version: 2 });
    expect(json.body_before).toContain('as of version 1.');
    expect(json.body_after).toContain('as of version 2.');
    expect(json.diff).toContain('-Its rule, as of version 1.\n+Its rule, as of version 2.\n');
    const page = await fetch(`${board.url}/runs/${plan.runId}/plan/${encodeURIComponent('REVIEW/000001')}`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('<span class="del">-Its rule, as of version 1.</span>');
    expect(text).toContain('<span class="add">+Its rule, as of version 2.</span>');
  });
});

describe('cutter approval sign and the plan', () => {
  function keyFile(): string {
    const file = join(env.dir, 'sovereign-a.pem');
    writeFileSync(file, env.sovereign.key.privatePem, { mode: 0o600 });
    return file;
  }

  it('shows the plan summary and the first keys of each op before it signs', async () => {
    const out = join(env.dir, 'online.json');
    const r = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', plan.runId, '--key', keyFile(), '--out', out], { ...env.env, CUTTER_API_URL: board.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('  create (3000): REVIEW/007001, REVIEW/007002, REVIEW/007003, REVIEW/007004, REVIEW/007005, …');
    expect(r.stdout).toContain('  transition (2333): REVIEW/000002, REVIEW/000003, REVIEW/000005');
  });

  it('signs offline from a verified export, and the board accepts the envelope', async () => {
    const out = join(env.dir, 'offline.json');
    const r = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', plan.runId, '--key', keyFile(), '--plan-export', exportFile, '--out', out], offlineEnv);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`offline: ${exportFile} holds exactly this plan`);
    const envelope = JSON.parse(readFileSync(out, 'utf8')) as { document: string };
    expect(envelope.document).toContain(`plan_sha256: ${plan.planSha256}\n`);
    expect(envelope.document).toContain(`allowance: max_units=${N}; transitions=draft->enacted,new->draft,revise\n`);
    const res = await fetch(`${board.url}/runs/${plan.runId}/approvals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: readFileSync(out, 'utf8') });
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it('refuses a tampered export offline and writes nothing', async () => {
    const tampered = edited('tampered.ndjson', (ls) => ls.map((l, i) => (i === 42 ? l.replace(/"body_sha256_after":"([0-9a-f])/, (_, c: string) => `"body_sha256_after":"${c === 'f' ? '0' : 'f'}`) : l)));
    expect(readFileSync(tampered, 'utf8')).not.toBe(exportText);
    const out = join(env.dir, 'tampered.json');
    const r = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', plan.runId, '--key', keyFile(), '--plan-export', tampered, '--out', out], offlineEnv);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[PLAN_EXPORT_MISMATCH\]/);
    expect(existsSync(out)).toBe(false);
    const otherRun = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', 'run-20000101-000000-000000', '--key', keyFile(), '--plan-export', exportFile, '--out', out], offlineEnv);
    expect(otherRun.code).toBe(2);
    expect(otherRun.stderr).toMatch(/\[PLAN_EXPORT_RUN_MISMATCH\]/);
    expect(existsSync(out)).toBe(false);
  });
});
