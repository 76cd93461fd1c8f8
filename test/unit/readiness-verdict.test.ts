import { describe, expect, it } from 'vitest';
import { compareDbState, type DbSnapshot } from '../../shared/readiness/db-state.js';
import { renderReadinessJson } from '../../shared/readiness/render-json.js';
import { renderReadinessMarkdown } from '../../shared/readiness/render-md.js';
import { blocker, passed, type PackageResult, type ReadinessScope } from '../../shared/readiness/types.js';
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

const verdictOf = (packages: PackageResult[], after: DbSnapshot | null, failures: string[] = []) =>
  decideVerdict({ startedUtc: '2026-11-24T00:00:00.000Z', scope, dbState: compareDbState(snapshot(3), after), packages, criteria: [], failures });

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

  it('is PASS with a blocking item, READY with only non-blocking notes, numbering blockers 1..n', () => {
    const pass = verdictOf([gpg(), volatile()], snapshot(3));
    expect(pass.verdict).toBe('PASS');
    expect(pass.verdict_reason).toBe('the check ran to the end and changed nothing; 1 blocking item(s) are missing (1 for operator)');
    expect(pass.blockers.map((b) => [b.id, b.package, b.blocking])).toEqual([
      [1, 'backup runner', true],
      [2, 'Redis durability', false],
    ]);
    const ready = verdictOf([passed('grant probe', 'all rows hold', []), volatile()], snapshot(3));
    expect(ready.verdict).toBe('READY');
  });

  it('is FAIL when a table changed while the check ran, or the check could not complete', () => {
    const changed = verdictOf([passed('grant probe', 'ok', [])], snapshot(4));
    expect(changed.verdict).toBe('FAIL');
    expect(changed.verdict_reason).toMatch(/^1 item\(s\) of the database state CHANGED while the check ran \(public\.information_unit\)/);
    const md = renderReadinessMarkdown(changed);
    expect(md).toContain('| public.information_unit | 3 rows, md5 aaaaaaaaaaaa | 4 rows, md5 aaaaaaaaaaaa | **CHANGED** |');
    expect(md).toContain('| cutter_governance.run | 0 rows, md5 bbbbbbbbbbbb | 0 rows, md5 bbbbbbbbbbbb | UNCHANGED |');

    const failed = verdictOf([passed('grant probe', 'ok', [])], null, ['the second fingerprint could not be taken: gone']);
    expect(failed.verdict).toBe('FAIL');
    expect(failed.verdict_reason).toBe('the check could not be completed: the second fingerprint could not be taken: gone');
    expect(renderReadinessMarkdown(failed)).toContain('| execution_enabled() | false | not read | NOT RE-READ |');
  });

  it('renders the JSON contract keys of DESIGN §4', () => {
    const json = JSON.parse(renderReadinessJson(verdictOf([gpg()], snapshot(3)))) as Record<string, unknown> & {
      db_state: Record<string, unknown>[];
      packages: Record<string, unknown>[];
      blockers: Record<string, unknown>[];
    };
    expect(Object.keys(json)).toEqual(['verdict', 'verdict_reason', 'started_utc', 'finished_utc', 'scope', 'db_state', 'packages', 'criteria', 'blockers', 'failures']);
    expect(Object.keys(json.db_state[0] ?? {})).toEqual(['table', 'before', 'after', 'unchanged']);
    expect(Object.keys(json.packages[0] ?? {})).toEqual(['name', 'runnable', 'verified', 'checks']);
    expect(Object.keys(json.blockers[0] ?? {})).toEqual(['id', 'owner', 'form', 'blocking', 'package', 'why', 'attachment']);
  });
});
