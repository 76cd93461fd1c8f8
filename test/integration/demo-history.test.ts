import { verify, createPublicKey } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { parseApprovalDocument } from '../../shared/approval/document.js';
import type { Readiness } from '../../shared/readiness/types.js';
import type { RunView } from '../../shared/runs/view.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { digestAllTables } from '../support/plan-fixtures.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * `cutter demo seed` on an empty database leaves the G0 state of the
 * readiness report operators know: 158 units (98 draft in ICX-WORK, 60
 * enacted in ICX-CONST), 165 versions, 60 lifecycle rows, 2 change sets, 3
 * review decisions, 2 verify results, the kill switch off. Those numbers are
 * a history the rest of the system reads as it reads any: two runs with
 * their plans, signed approvals, ledger, verification, reports and audit
 * events.
 */

const ENACTMENT = 'run-demo-history-1';
const AMENDMENT = 'run-demo-history-2';

/** The eight lines of section 1, as the report prints them. */
const G0_LINES = [
  'public.information_unit: 158 == baseline (98 draft + 60 enacted)',
  'public.unit_version: 165 == baseline',
  'public.iu_lifecycle_log: 60 == baseline',
  'cutter_governance.cut_change_set: 2 == baseline',
  'cutter_governance.review_decision: 3 == baseline',
  'cutter_governance.verify_result: 2 == baseline',
  'enacted units: 60 == baseline',
  'execution_enabled(): False == baseline',
];

let db: TestDatabase;
let home: string;
let env: Record<string, string>;
let firstSeed: { code: number; stdout: string; stderr: string };
beforeAll(async () => {
  db = await createTestDatabase('demo_history');
  home = mkdtempSync(join(tmpdir(), 'cutter-demo-home-'));
  // The seed writes the corpus, as an administrator; everything after it reads as cutter_app.
  env = { DATABASE_URL: db.appUrl, CUTTER_OPERATOR: 'demo-operator', HOME: home };
  firstSeed = await runCli(['demo', 'seed'], { ...env, DATABASE_URL: db.url });
}, 60_000);
afterAll(async () => {
  await db?.drop();
  if (home) rmSync(home, { recursive: true, force: true });
});

const q = async <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await db.pool.query<T>(sql, params)).rows;

describe('cutter demo seed on an empty database', () => {
  it('imports 158 drafts, registers the history targets and replays its two runs', () => {
    expect(firstSeed.code, firstSeed.stderr).toBe(0);
    expect(firstSeed.stdout.trimEnd().split('\n')).toEqual([
      'demo seed: 158 unit(s) inserted',
      '  target(s) registered: icx-const-enactment, icx-const',
      `  ${ENACTMENT}: live on icx-const-enactment, succeeded, verdict PASS (history replayed now)`,
      `  ${AMENDMENT}: dry on icx-const, succeeded, verdict PASS (history replayed now)`,
    ]);
  });

  it('readiness against a baseline recorded right after shows the seed G0 numbers exactly, in markdown and JSON', async () => {
    const recorded = await runCli(['baseline', 'record', '--name', 'seed-g0', '--json'], env);
    expect(recorded.code, recorded.stderr).toBe(0);
    const items = (JSON.parse(recorded.stdout) as { items: { item: string; count: number; detail: string | null }[] }).items;
    expect(items.map((i) => [i.item, i.count, i.detail])).toEqual([
      ['public.information_unit', 158, '98 draft + 60 enacted'],
      ['public.unit_version', 165, null],
      ['public.iu_lifecycle_log', 60, null],
      ['cutter_governance.cut_change_set', 2, null],
      ['cutter_governance.review_decision', 3, null],
      ['cutter_governance.verify_result', 2, null],
      ['enacted units', 60, null],
      ['execution_enabled()', 0, null],
    ]);

    const json = await runCli(['readiness', '--baseline', 'seed-g0', '--format', 'json'], env);
    const report = JSON.parse(json.stdout) as Readiness;
    expect(report.baseline?.lines.map((l) => l.line)).toEqual(G0_LINES);
    expect([report.baseline?.holds, report.production_mutation, report.execution_enabled]).toEqual([true, 'NONE', false]);
    const md = await runCli(['readiness', '--baseline', 'seed-g0'], env);
    expect(md.code).toBe(json.code);
    expect(md.stdout).toContain(['```', ...G0_LINES, '```'].join('\n'));
    expect(md.stdout).toContain('**ZERO persistent production mutation.**');
  });

  it('the units: ICX-WORK 98 drafts at version 1; ICX-CONST 60 enacted, 7 of them revised to version 2 by run 1', async () => {
    expect(await q(`SELECT corpus, state, current_version AS v, count(*)::int AS n FROM public.information_unit GROUP BY 1, 2, 3 ORDER BY 1, 3`)).toEqual([
      { corpus: 'ICX-CONST', state: 'enacted', v: 1, n: 53 },
      { corpus: 'ICX-CONST', state: 'enacted', v: 2, n: 7 },
      { corpus: 'ICX-WORK', state: 'draft', v: 1, n: 98 },
    ]);
    expect(await q(`SELECT version, created_by_run AS run, count(*)::int AS n FROM public.unit_version GROUP BY 1, 2 ORDER BY 1`)).toEqual([
      { version: 1, run: null, n: 158 },
      { version: 2, run: ENACTMENT, n: 7 },
    ]);
    // The log records transitions: the import made none, run 1 made 60.
    expect(await q(`SELECT from_state, to_state, run_id, count(*)::int AS n FROM public.iu_lifecycle_log GROUP BY 1, 2, 3`)).toEqual([
      { from_state: 'draft', to_state: 'enacted', run_id: ENACTMENT, n: 60 },
    ]);
  });

  it('the governance records: one change set per run that says how it ended, one decision per signature, one verification per run', async () => {
    expect(await q(`SELECT run_id, target, status, unit_count FROM cutter_governance.cut_change_set ORDER BY run_id`)).toEqual([
      { run_id: ENACTMENT, target: 'icx-const-enactment', status: 'applied', unit_count: 60 },
      { run_id: AMENDMENT, target: 'icx-const', status: 'rehearsed', unit_count: 5 },
    ]);
    expect(await q(`SELECT l.run_id, l.plan_sha256 = c.plan_sha256 AS same, l.unit_count FROM cutter_governance.execution_ledger l JOIN cutter_governance.cut_change_set c USING (run_id)`)).toEqual([
      { run_id: ENACTMENT, same: true, unit_count: 60 },
    ]);
    expect(await q(`SELECT run_id, gate, key_name, consumed_utc IS NOT NULL AS consumed FROM cutter_governance.review_decision ORDER BY id`)).toEqual([
      { run_id: ENACTMENT, gate: 'SG_1', key_name: 'demo-sovereign', consumed: true },
      { run_id: ENACTMENT, gate: 'SG_1', key_name: 'demo-sovereign-2', consumed: true },
      { run_id: ENACTMENT, gate: 'EXEC', key_name: 'demo-sovereign', consumed: true },
    ]);
    const verified = await q<{ run_id: string; passed: boolean; checks: { name: string; passed: boolean }[] }>(
      'SELECT run_id, passed, checks FROM cutter_governance.verify_result ORDER BY run_id',
    );
    expect(verified.map((v) => [v.run_id, v.passed, v.checks.length, v.checks.every((c) => c.passed)])).toEqual([
      [ENACTMENT, true, 9, true],
      [AMENDMENT, true, 5, true],
    ]);
    expect(await q(`SELECT name, protected, allowed_transitions FROM cutter_governance.target_registry ORDER BY registered_utc`)).toEqual([
      { name: 'icx-const-enactment', protected: false, allowed_transitions: ['draft->enacted', 'revise'] },
      { name: 'icx-const', protected: true, allowed_transitions: ['revise'] },
    ]);
    expect(await q('SELECT count(*)::int AS n FROM cutter_governance.corpus_lock')).toEqual([{ n: 0 }]);
  });

  it('each approval is a real signed document of a demo sovereign key, bound to the plan hash `cutter plan hash` recomputes', async () => {
    const keysDir = join(home, '.cutter-demo', 'sovereign', 'public');
    const keys = new Map(readdirSync(keysDir).map((f) => [f.replace(/\.pem$/, ''), createPublicKey(readFileSync(join(keysDir, f), 'utf8'))]));
    expect([...keys.keys()].sort()).toEqual(['demo-sovereign', 'demo-sovereign-2']);

    const exported = await runCli(['plan', 'show', ENACTMENT, '--format', 'ndjson'], env);
    const file = join(home, 'plan.ndjson');
    writeFileSync(file, exported.stdout);
    const hashed = await runCli(['plan', 'hash', file], env);
    expect(hashed.code, hashed.stderr).toBe(0);
    const planSha256 = hashed.stdout.split(/\s+/)[0];

    const decisions = await q<{ gate: string; key_name: string; document: string; signature: string; plan_sha256: string }>(
      `SELECT gate, key_name, document, signature, plan_sha256 FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY id`,
      [ENACTMENT],
    );
    for (const d of decisions) {
      const publicKey = keys.get(d.key_name);
      if (!publicKey) throw new Error(`no demo key ${d.key_name}`);
      expect(verify(null, Buffer.from(d.document, 'utf8'), publicKey, Buffer.from(d.signature, 'base64')), `${d.gate} by ${d.key_name}`).toBe(true);
      const doc = parseApprovalDocument(d.document);
      expect([doc.gate, doc.runId, doc.target, doc.planSha256, d.plan_sha256]).toEqual([d.gate, ENACTMENT, 'icx-const-enactment', planSha256, planSha256]);
      if (doc.allowance.kind === 'plan') expect(doc.allowance).toMatchObject({ maxUnits: 60, transitions: ['draft->enacted', 'revise'] });
    }
  });

  it('cutter status and the reports show both runs, the gate opened by a quorum of two', async () => {
    const live = await runCli(['status', ENACTMENT, '--json'], env);
    expect(live.code, live.stderr).toBe(0);
    const view = JSON.parse(live.stdout) as RunView;
    expect([view.mode, view.status, view.verdict, view.plan?.unit_count, view.plan?.by_transition]).toEqual(['live', 'succeeded', 'PASS', 60, { 'draft->enacted': 60, revise: 7 }]);
    expect(view.phases.map((p) => `${p.phase} ${p.state}`)).toEqual(
      ['precheck', 'grant-probe', 'discover', 'cutplan', 'approval-gate', 'backup', 'execute', 'verify'].map((p) => `${p} completed`),
    );
    const gate = view.phases.find((p) => p.phase === 'approval-gate')?.summary as { quorum: number; sg_1_keys: string[]; exec_keys: string[] };
    expect([gate.quorum, new Set(gate.sg_1_keys).size, gate.exec_keys.length]).toEqual([2, 2, 1]);
    expect(view.phases.find((p) => p.phase === 'execute')?.summary).toMatchObject({ applied: true, units_updated: 60, versions_written: 7, log_rows: 60 });

    const dry = JSON.parse((await runCli(['status', AMENDMENT, '--json'], env)).stdout) as RunView;
    expect([dry.mode, dry.target, dry.status, dry.verdict, dry.plan?.by_op]).toEqual(['dry', 'icx-const', 'succeeded', 'PASS', { revise: 5 }]);
    expect(dry.phases.find((p) => p.phase === 'execute')?.summary).toMatchObject({ rehearsed: true, rolled_back: true, versions_written: 5 });

    for (const runId of [ENACTMENT, AMENDMENT]) {
      const report = await runCli(['status', runId, '--report'], env);
      expect(report.stdout, runId).toContain('- verdict: **PASS**');
      expect(report.stdout, runId).toMatch(/## Backup\n\n- file: none: demo seed history, no backup taken/);
      expect(report.stdout, runId).toContain('## Demo seed history');
    }
  });

  it('the audit chain is intact and tells the history in order', async () => {
    const audit = await runCli(['audit', 'verify'], env);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toMatch(/audit chain intact/);
    const events = await q<{ kind: string; run_id: string | null }>(`SELECT kind, run_id FROM cutter_governance.audit_event WHERE kind <> 'baseline.recorded' ORDER BY seq`);
    expect(events.map((e) => `${e.kind}${e.run_id ? ` ${e.run_id}` : ''}`)).toEqual([
      'demo.seed',
      'target.register',
      `run.enqueued ${ENACTMENT}`,
      `run.awaiting_approval ${ENACTMENT}`,
      `approval.accepted ${ENACTMENT}`,
      `approval.accepted ${ENACTMENT}`,
      `approval.exec_granted ${ENACTMENT}`,
      `gate.released ${ENACTMENT}`,
      `execute.applied ${ENACTMENT}`,
      `run.verified ${ENACTMENT}`,
      'target.register',
      `run.enqueued ${AMENDMENT}`,
      `execute.rehearsed ${AMENDMENT}`,
      `run.verified ${AMENDMENT}`,
    ]);
  });

  it('a second seed changes nothing and says so', async () => {
    const before = await digestAllTables(db.pool);
    const again = await runCli(['demo', 'seed'], { ...env, DATABASE_URL: db.url });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trimEnd().split('\n')).toEqual([
      'demo seed: 0 unit(s) inserted',
      `  ${ENACTMENT}: live on icx-const-enactment, succeeded, verdict PASS`,
      `  ${AMENDMENT}: dry on icx-const, succeeded, verdict PASS`,
    ]);
    expect(await digestAllTables(db.pool)).toEqual(before);
  });
});

describe('a seed that stops half way', () => {
  it('leaves its history run where it stopped, and the next seed finishes it with the same G0', async () => {
    const other = await createTestDatabase('demo_history_resume');
    const otherHome = mkdtempSync(join(tmpdir(), 'cutter-demo-home-'));
    try {
      const admin = { DATABASE_URL: other.url, HOME: otherHome };
      // An exec role that does not exist: run 1 stops at its grant probe.
      const stopped = await runCli(['demo', 'seed'], { ...admin, CUTTER_EXEC_ROLE: 'cutter_no_such_role' });
      expect(stopped.code).not.toBe(0);
      expect(stopped.stderr).toMatch(/exec role "cutter_no_such_role" does not exist.*\[EXEC_ROLE_MISSING\]/);
      const mid = await other.pool.query<{ status: string; phase: string }>('SELECT status, phase FROM cutter_governance.run');
      expect(mid.rows).toEqual([{ status: 'running', phase: 'grant-probe' }]);

      const resumed = await runCli(['demo', 'seed'], admin);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain('demo seed: 0 unit(s) inserted');
      expect(resumed.stdout).toContain(`${ENACTMENT}: live on icx-const-enactment, succeeded, verdict PASS (history replayed now)`);
      expect(resumed.stdout).toContain(`${AMENDMENT}: dry on icx-const, succeeded, verdict PASS (history replayed now)`);
      const probe = await other.pool.query<{ attempts: number }>(`SELECT attempts FROM cutter_governance.run_phase WHERE run_id = $1 AND phase = 'grant-probe'`, [ENACTMENT]);
      expect(probe.rows).toEqual([{ attempts: 2 }]);
      expect((await runCli(['baseline', 'record'], admin)).code).toBe(0);
      const json = JSON.parse((await runCli(['readiness', '--baseline', 'G0', '--format', 'json'], admin)).stdout) as Readiness;
      expect(json.baseline?.lines.map((l) => l.line)).toEqual(G0_LINES);
      expect((await runCli(['audit', 'verify'], admin)).code).toBe(0);
    } finally {
      await other.drop();
      rmSync(otherHome, { recursive: true, force: true });
    }
  }, 60_000);

  it('a demo corpus loaded without the history (by an older seed) is left as it is', async () => {
    const old = await createTestDatabase('demo_history_old');
    const oldHome = mkdtempSync(join(tmpdir(), 'cutter-demo-home-'));
    try {
      await old.pool.query(`INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ('ICX-WORK', 'ICX-WORK/001', 'draft', 1)`);
      const before = await digestAllTables(old.pool);
      const seeded = await runCli(['demo', 'seed'], { DATABASE_URL: old.url, HOME: oldHome });
      expect(seeded.code, seeded.stderr).toBe(0);
      expect(seeded.stdout).toMatch(/^demo seed: 0 unit\(s\) inserted\n {2}no history: this corpus was loaded by a seed older than the demo history/);
      expect(await digestAllTables(old.pool)).toEqual(before);
    } finally {
      await old.drop();
      rmSync(oldHome, { recursive: true, force: true });
    }
  });
});

describe('the history on the board', () => {
  let run: RunEnv;
  let board: BoardServer;
  beforeAll(async () => {
    // A run environment's database is seeded by the same seed (test/support/db.ts).
    run = await createRunEnv('demohist');
    board = await startBoardServer({ cfg: run.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials: { user: 'admin', password: 'demo history board' }, options: { sweepIntervalMs: 60_000 } });
  }, 60_000);
  afterAll(async () => {
    await board?.close();
    await run?.close();
  });

  it('lists both runs and shows each run page, JSON and HTML, and its report', async () => {
    const list = (await (await fetch(`${board.url}/runs`, { headers: { accept: 'application/json' } })).json()) as { runs: { run_id: string; status: string }[] };
    expect(list.runs.map((r) => [r.run_id, r.status])).toEqual([
      [AMENDMENT, 'succeeded'],
      [ENACTMENT, 'succeeded'],
    ]);
    for (const runId of [ENACTMENT, AMENDMENT]) {
      const json = (await (await fetch(`${board.url}/runs/${runId}`, { headers: { accept: 'application/json' } })).json()) as RunView;
      expect([json.run_id, json.verdict, json.phases.every((p) => p.state === 'completed')]).toEqual([runId, 'PASS', true]);
      const page = await fetch(`${board.url}/runs/${runId}`, { headers: { accept: 'text/html' } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(runId);
      const report = await fetch(`${board.url}/runs/${runId}/report`, { headers: { accept: 'text/markdown' } });
      expect(await report.text()).toContain(`# Run ${runId}`);
    }
  });
});
