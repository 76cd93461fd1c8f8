import { describe, expect, it } from 'vitest';
import { compareDbState, type DbSnapshot } from '../../shared/readiness/db-state.js';
import { renderReadinessJson } from '../../shared/readiness/render-json.js';
import { renderReadinessMarkdown } from '../../shared/readiness/render-md.js';
import { compareWithBaseline, type G0Item } from '../../shared/readiness/baseline.js';
import { blocker, passed, type BaselineState, type PackageResult, type ReadinessScope } from '../../shared/readiness/types.js';
import { decideVerdict } from '../../shared/readiness/verdict.js';

const scope: ReadinessScope = {
  target: 'icx-work',
  corpus: 'ICX-WORK',
  run_id: null,
  run_status: null,
  plan_sha256: null,
  snapshot: null,
  operator: 'tester',
  database: 'cutter on 127.0.0.1:5432',
  redis: 'redis://127.0.0.1:6379',
  queue_prefix: 'cutter',
};

function snapshot(rows: number, on = false): DbSnapshot {
  return {
    tables: new Map([
      ['public.information_unit', { rows, hash: 'a'.repeat(32) }],
      ['cutter_governance.run', { rows: 0, hash: 'b'.repeat(32) }],
    ]),
    executionEnabled: on,
  };
}

const verdictOf = (packages: PackageResult[], after: DbSnapshot | null, failures: string[] = [], baseline: BaselineState | null = null) =>
  decideVerdict({ startedUtc: '2026-11-24T00:00:00.000Z', scope, dbState: compareDbState(snapshot(3), after), baseline, packages, criteria: [], failures });

const gpg = (): PackageResult => ({
  name: 'backup runner',
  runnable: 'NO',
  verified: 'selftest without writing',
  checks: [],
  blockers: [blocker('operator', 'a GPG key with fingerprint F in GNUPGHOME (/g)', 'no key')],
  failure: null,
});
const volatile = (): PackageResult => ({
  name: 'Redis durability',
  runnable: 'NO',
  verified: 'volatile, allowed',
  checks: [],
  blockers: [blocker('operator', 'Redis with appendonly yes', 'volatile', { blocking: false })],
  failure: null,
});

describe('the readiness verdict', () => {
  it('compares every table and the switch, sorted, each UNCHANGED or not', () => {
    const rows = compareDbState(snapshot(3), snapshot(4, true));
    expect(rows.map((r) => [r.table, r.unchanged])).toEqual([
      ['cutter_governance.run', true],
      ['public.information_unit', false],
      ['execution_enabled()', false],
    ]);
  });

  it('g8 PASS with a blocking item is not ready for a live run; with only non-blocking notes it is; blockers numbered 1..n with a gap and owners', () => {
    const pass = verdictOf([gpg(), volatile()], snapshot(3));
    expect(pass.g8).toBe('PASS');
    expect(pass.ready_for_live_run).toBe('no (1 open)');
    expect(pass.production_mutation).toBe('NONE');
    expect(pass.execution_enabled).toBe(false);
    expect(pass.g8_reason).toBe('the check ran to the end and it changed nothing; 1 blocking item(s) are open (1 for operator)');
    expect(pass.blockers.map((b) => [b.id, b.gap, b.owners, b.package, b.blocking])).toEqual([
      [1, 'C7', ['operator'], 'backup runner', true],
      [2, 'REDIS', ['operator'], 'Redis durability', false],
    ]);
    expect(pass.first_run_path).toEqual([
      { package: 'backup runner', state: 'OPEN', note: '1 open: a GPG key with fingerprint F in GNUPGHOME (/g)' },
      { package: 'Redis durability', state: 'OPEN', note: 'volatile, allowed' },
    ]);
    const ready = verdictOf([passed('grant probe', 'all rows hold', []), { ...volatile(), runnable: 'SPEC-COMPLETE' }], snapshot(3));
    expect([ready.g8, ready.ready_for_live_run]).toEqual(['PASS', 'yes']);
    expect(ready.first_run_path.map((p) => p.state)).toEqual(['CLOSED/READY', 'PACKAGED']);
    const md = renderReadinessMarkdown(pass);
    expect(md).toContain('```\ng8: PASS\nproduction_mutation: NONE\nexecution_enabled: False\nready_for_live_run: no (1 open)\n```');
    expect(md).toContain('1. **C7** · operator · blocking · package: backup runner');
    expect(md).toContain('## 4. First-run path');
  });

  it('g8 FAILs when a table changed while the check ran, or the check could not complete', () => {
    const changed = verdictOf([passed('grant probe', 'ok', [])], snapshot(4));
    expect([changed.g8, changed.production_mutation, changed.ready_for_live_run]).toEqual(['FAIL', 'CHANGED', 'no (g8 FAIL)']);
    expect(changed.g8_reason).toMatch(/^1 item\(s\) of the database state CHANGED while the check ran \(public\.information_unit\)/);
    const md = renderReadinessMarkdown(changed);
    expect(md).toContain('| public.information_unit | 3 rows, md5 aaaaaaaaaaaa | 4 rows, md5 aaaaaaaaaaaa | **CHANGED** |');
    expect(md).toContain('| cutter_governance.run | 0 rows, md5 bbbbbbbbbbbb | 0 rows, md5 bbbbbbbbbbbb | UNCHANGED |');

    const failed = verdictOf([passed('grant probe', 'ok', [])], null, ['the second fingerprint could not be taken: gone']);
    expect([failed.g8, failed.production_mutation]).toEqual(['FAIL', 'UNKNOWN']);
    expect(failed.g8_reason).toBe('the check could not be completed: the second fingerprint could not be taken: gone');
    expect(renderReadinessMarkdown(failed)).toContain('| execution_enabled() | False | not read | NOT RE-READ |');
  });

  it('against a baseline: one line per item, ZERO persistent production mutation only when every line holds', () => {
    const item = (name: string, count: number, hash: string | null = 'h', detail: string | null = null): G0Item => ({ item: name, count, hash, detail });
    const recorded = [item('public.information_unit', 158, 'a', '98 draft + 60 enacted'), item('public.unit_version', 165), item('execution_enabled()', 0, null)];
    const same = compareWithBaseline(recorded, recorded);
    expect(same.map((l) => l.line)).toEqual(['public.information_unit: 158 == baseline (98 draft + 60 enacted)', 'public.unit_version: 165 == baseline', 'execution_enabled(): False == baseline']);
    const base = (lines: typeof same): BaselineState => ({ name: 'G0', recorded_utc: '2026-12-05T00:00:00.000Z', recorded_by: 'ops', lines, holds: lines.every((l) => l.equal) });
    const holds = verdictOf([passed('grant probe', 'ok', [])], snapshot(3), [], base(same));
    expect([holds.g8, holds.production_mutation]).toEqual(['PASS', 'NONE']);
    expect(renderReadinessMarkdown(holds)).toContain('**ZERO persistent production mutation.**');

    const cut = compareWithBaseline(recorded, [item('public.information_unit', 168, 'b', '43 draft + 125 enacted'), item('public.unit_version', 165, 'x'), item('execution_enabled()', 0, null)]);
    expect(cut.map((l) => l.line)).toEqual([
      'public.information_unit: 168 != baseline (was 158); now 43 draft + 125 enacted',
      'public.unit_version: 165 != baseline (was 165, same count, content changed)',
      'execution_enabled(): False == baseline',
    ]);
    const drifted = verdictOf([passed('grant probe', 'ok', [])], snapshot(3), [], base(cut));
    expect([drifted.g8, drifted.production_mutation]).toEqual(['FAIL', 'CHANGED']);
    expect(drifted.g8_reason).toBe('2 item(s) differ from baseline G0 (public.information_unit, public.unit_version): the database is not in the state that baseline recorded');
    expect(renderReadinessMarkdown(drifted)).not.toContain('ZERO persistent production mutation');
  });

  it('renders the JSON keys of the report', () => {
    const json = JSON.parse(renderReadinessJson(verdictOf([gpg()], snapshot(3)))) as Record<string, unknown> & {
      db_state: Record<string, unknown>[];
      packages: Record<string, unknown>[];
      blockers: Record<string, unknown>[];
      first_run_path: Record<string, unknown>[];
    };
    expect(Object.keys(json)).toEqual([
      'g8', 'g8_reason', 'ready_for_live_run', 'production_mutation', 'execution_enabled', 'started_utc', 'finished_utc', 'scope',
      'db_state', 'baseline', 'packages', 'criteria', 'blockers', 'first_run_path', 'failures',
    ]);
    expect(Object.keys(json.db_state[0] ?? {})).toEqual(['table', 'before', 'after', 'unchanged']);
    expect(Object.keys(json.packages[0] ?? {})).toEqual(['name', 'runnable', 'verified', 'checks']);
    expect(Object.keys(json.blockers[0] ?? {})).toEqual(['id', 'gap', 'owners', 'form', 'package', 'blocking', 'why', 'attachment']);
    expect(Object.keys(json.first_run_path[0] ?? {})).toEqual(['package', 'state', 'note']);
  });
});
