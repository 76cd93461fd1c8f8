import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { demoBody } from '../../shared/demo/corpus.js';
import { APP_ROLE } from '../../shared/grants/matrix.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import type { Readiness } from '../../shared/readiness/types.js';
import { createRedis, redisDurability, type RedisClient } from '../../shared/redis.js';
import { runCli } from '../support/cli.js';
import { createDemoDatabase, type TestDatabase } from '../support/db.js';
import { createTestKey, type TestKeyring } from '../support/gpg.js';
import { digestAllTables, ndjson, scratchDir } from '../support/plan-fixtures.js';
import { testQueuePrefix } from '../support/prefix.js';
import { makeKey, writeTrustedKeys } from '../support/sovereign.js';

/**
 * What else readiness catches, on a deployment whose keys are in place but
 * where nothing runs: no workers, a volatile Redis not allowed, a grant
 * taken away, targets and snapshots that fail their criteria; and that it
 * reports FAIL (exit 1) when it cannot complete, and refuses bad input (exit 2).
 */

const DEMO_SNAPSHOT = new URL('../../demo/icx-work.snapshot.ndjson', import.meta.url).pathname;

let db: TestDatabase;
let dir: string;
let gpgKey: TestKeyring;
let env: Record<string, string>;
let redis: RedisClient;
let volatileRedis: boolean;
const files = scratchDir('readiness-checks');

beforeAll(async () => {
  db = await createDemoDatabase('readiness_checks', 'tester');
  dir = mkdtempSync(join(tmpdir(), 'cutter-readiness-checks-'));
  gpgKey = createTestKey();
  env = {
    // Readiness runs as the operator's CLI does: as the application's role, not a superuser.
    DATABASE_URL: db.appUrl,
    REDIS_URL: inject('redisUrl'),
    CUTTER_QUEUE_PREFIX: testQueuePrefix('rdc'),
    BACKUP_GPG_FPR: gpgKey.fpr,
    GNUPGHOME: gpgKey.home,
    BACKUP_DIR: join(dir, 'backups'),
    SOVEREIGN_KEYS: writeTrustedKeys(join(dir, 'keys'), [makeKey('sovereign-a'), makeKey('sovereign-b')]),
    CUTTER_OPERATOR: 'tester',
    LOG_LEVEL: 'silent',
  };
  mkdirSync(env['BACKUP_DIR'] ?? '', { recursive: true });
  redis = createRedis(env['REDIS_URL'] ?? '');
  volatileRedis = !(await redisDurability(redis)).durable;
});

afterAll(async () => {
  const prefix = env['CUTTER_QUEUE_PREFIX'] ?? '';
  for (const phase of PHASES) {
    const queue = new Queue(phase, { connection: redis, prefix });
    await queue.obliterate({ force: true });
    await queue.close();
  }
  redis.disconnect();
  await db.drop();
  gpgKey.remove();
  rmSync(dir, { recursive: true, force: true });
  files.cleanup();
});

async function readiness(args: string[], over: Record<string, string> = {}): Promise<{ code: number; report: Readiness; stderr: string }> {
  const r = await runCli(['readiness', '--format', 'json', ...args], { ...env, ...over });
  return { code: r.code, report: JSON.parse(r.stdout) as Readiness, stderr: r.stderr };
}

const blocking = (r: Readiness) => r.blockers.filter((b) => b.blocking);
const criterion = (r: Readiness, id: string) => r.criteria.find((c) => c.id === id);

/** DUMP of every key under the prefix: equal before and after means readiness wrote nothing to Redis there. */
async function redisKeys(prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) out[key] = (await redis.dumpBuffer(key))?.toString('base64') ?? '';
  } while (cursor !== '0');
  return out;
}

/** Feeds SQL to the real psql binary, as workflow_admin would apply a package. */
function psql(url: string, input: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-d', url], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    child.stdin.end(input);
  });
}

describe('a deployment where nothing runs', () => {
  it('names the missing workers and the volatile Redis as operator blockers, and writes nothing to Redis', async () => {
    const prefix = env['CUTTER_QUEUE_PREFIX'] ?? '';
    // A queue with a job in it: readiness must leave its keys exactly as they are.
    const queue = new Queue('precheck', { connection: redis, prefix });
    await queue.add('precheck', { runId: 'run-readiness-existing' }, { jobId: 'existing' });
    await queue.close();
    const keysBefore = await redisKeys(prefix);
    expect(Object.keys(keysBefore).length).toBeGreaterThan(0);

    const { code, report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(code).toBe(0);
    expect(report.g8).toBe('PASS');
    const workers = report.blockers.find((b) => b.package === 'command package');
    expect(workers).toMatchObject({ owners: ['operator'], blocking: true, form: `\`cutter worker\` running with CUTTER_QUEUE_PREFIX=${prefix} against this REDIS_URL` });
    expect(report.packages.find((p) => p.name === 'command package')?.checks[0]).toBe(
      `live workers under prefix ${prefix} (CLIENT LIST): ${PHASES.map((p) => `${p} 0`).join(', ')}`,
    );
    if (volatileRedis) {
      expect(report.blockers.find((b) => b.package === 'Redis durability')).toMatchObject({
        owners: ['operator'],
        blocking: true,
        form: expect.stringMatching(/^Redis with appendonly yes and maxmemory-policy noeviction .*, or CUTTER_ALLOW_VOLATILE_REDIS=true as a deliberate choice$/) as string,
      });
    }
    // Keys are loaded and two may approve: only the approvals themselves remain for the sovereign.
    expect(blocking(report).filter((b) => b.owners.includes('sovereign')).map((b) => b.form.slice(0, 8))).toEqual(['SG_1 app', 'EXEC gra']);
    expect(blocking(report).every((b) => !b.owners.includes('workflow_admin'))).toBe(true);
    expect(await redisKeys(prefix)).toEqual(keysBefore);
  });

  it('a quorum the keys cannot reach is a sovereign blocker; the operator\'s own keys (label or database login, any spelling) do not count', async () => {
    // Readiness connects as the application's login (env above): that is the operator's login here.
    const login = APP_ROLE;
    const keys = writeTrustedKeys(join(dir, 'keys-with-own'), [makeKey('sovereign-a'), makeKey('TESTER'), makeKey(login.toUpperCase())]);
    const { report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT], { SOVEREIGN_KEYS: keys, SOVEREIGN_QUORUM: '2' });
    expect(report.packages.find((p) => p.name === 'approval contract')?.runnable).toBe('NO');
    expect(blocking(report).filter((b) => b.package === 'approval contract')[0]).toMatchObject({
      owners: ['sovereign'],
      form: `1 more sovereign public key(s) in SOVEREIGN_KEYS, of an identity other than ${login} and tester, or SOVEREIGN_QUORUM lowered to 1`,
    });
  });
});

describe('a grant taken from the exec role', () => {
  it('is a workflow_admin blocker carrying the GRANT package; applying that package clears it', async () => {
    await db.pool.query('REVOKE EXECUTE ON FUNCTION cutter_governance.apply_plan(text, text) FROM cutter_exec');
    const { code, report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(code).toBe(0);
    expect(report.packages.find((p) => p.name === 'grant probe')?.runnable).toBe('NO');
    const grant = report.blockers.find((b) => b.package === 'grant probe');
    expect(grant).toMatchObject({ owners: ['workflow_admin'], blocking: true, form: expect.stringMatching(/^the GRANT package below, applied by workflow_admin/) as string });
    expect(grant?.attachment).toContain('GRANT EXECUTE ON FUNCTION "cutter_governance"."apply_plan"(text,text) TO "cutter_exec";');

    const md = await runCli(['readiness', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT], env);
    expect(md.stdout).toContain('   GRANT EXECUTE ON FUNCTION "cutter_governance"."apply_plan"(text,text) TO "cutter_exec";');

    expect(await psql(db.url, grant?.attachment ?? '')).toEqual({ code: 0, stderr: '' });
    const after = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(after.report.packages.find((p) => p.name === 'grant probe')?.runnable).toBe('YES');
    expect(after.report.blockers.filter((b) => b.owners.includes('workflow_admin'))).toEqual([]);
  });
});

describe('target intake', () => {
  it('agrees with `cutter plan` on the plan of a snapshot (C6), computed without staging it', async () => {
    const plan = await runCli(['plan', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--json'], env);
    const { unit_count: units, by_transition: kinds } = JSON.parse(plan.stdout) as { unit_count: number; by_transition: Record<string, number> };
    const { report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(criterion(report, 'C6')?.reason).toBe(
      `the plan of the snapshot (computed read-only, not frozen): ${units} unit(s), within max_units 500; transitions ${Object.keys(kinds).join(', ')} allowed`,
    );
  });

  it('a protected target fails C3 for a live run', async () => {
    const { code, report } = await readiness(['--target', 'icx-const']);
    expect(code).toBe(0);
    expect(criterion(report, 'C3')).toEqual({ id: 'C3', status: 'FAIL', reason: 'target icx-const is protected: a protected corpus is never cut live (a dry run is allowed)' });
    expect(report.blockers.find((b) => b.package === 'target intake' && b.why === criterion(report, 'C3')?.reason)?.owners).toEqual(['operator']);
    // Without a snapshot C5 and C6 are not checked, and that is itself a missing item.
    expect(criterion(report, 'C5')?.status).toBe('NOT CHECKED');
    expect(report.blockers.map((b) => b.form)).toContain('the snapshot of the first live run given as --snapshot FILE, so C5 and C6 can be checked');
  });

  it('an unknown target fails C1 with the command that registers it', async () => {
    const { report } = await readiness(['--target', 'icx-nope']);
    expect(criterion(report, 'C1')).toEqual({ id: 'C1', status: 'FAIL', reason: 'target icx-nope is not registered' });
    expect(report.blockers[0]).toMatchObject({ owners: ['operator'], package: 'target intake', form: 'target icx-nope registered: cutter target register --file icx-nope.json' });
  });

  it('no target at all: naming one is the operator\'s first move', async () => {
    const { report } = await readiness([]);
    expect(report.packages.find((p) => p.name === 'target intake')?.runnable).toBe('NO');
    expect(report.blockers.find((b) => b.package === 'target intake')?.form).toBe('the target of the first live run named with --target T (registered: icx-const, icx-const-enactment, icx-work)');
  });

  it('a snapshot with a bad line fails C5 naming the line; one beyond the allowance fails C6', async () => {
    const bad = files.write('bad.ndjson', `${JSON.stringify({ key: 'ICX-WORK/001', state: 'enacted', body: demoBody('ICX-WORK/001', 1) })}\n{"key": "ICX-WORK/002", "state": "gone", "body": "x"}\n`);
    const r5 = await readiness(['--target', 'icx-work', '--snapshot', bad]);
    expect(criterion(r5.report, 'C5')?.status).toBe('FAIL');
    expect(r5.report.blockers.find((b) => b.package === 'target intake')?.form).toMatch(/^a snapshot that parses cleanly: fix .*bad\.ndjson \(line 2: field "state": unknown state "gone"/);
    expect(criterion(r5.report, 'C6')).toEqual({ id: 'C6', status: 'NOT CHECKED', reason: 'C5 failed' });

    const retire = files.write('retire.ndjson', ndjson([{ key: 'ICX-WORK/003', state: 'retired', body: demoBody('ICX-WORK/003', 1) }]));
    const r6 = await readiness(['--target', 'icx-work', '--snapshot', retire]);
    expect(criterion(r6.report, 'C5')?.status).toBe('PASS');
    expect(criterion(r6.report, 'C6')?.status).toBe('FAIL');
    expect(criterion(r6.report, 'C6')?.reason).toContain('draft->retired (1 units)');
    expect(r6.report.blockers.find((b) => b.why === criterion(r6.report, 'C6')?.reason)?.owners).toEqual(['operator']);
  });
});

describe('when the check cannot be completed, or is asked wrongly', () => {
  it('an unreachable database is FAIL with exit 1, and says why', async () => {
    const r = await runCli(['readiness', '--format', 'json'], { ...env, DATABASE_URL: db.url.replace(/\/[^/]*$/, '/cutter_no_such_database') });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as Readiness;
    expect(report.g8).toBe('FAIL');
    expect(report.failures).toEqual([expect.stringMatching(/^database cutter_no_such_database on .* could not be read: .*does not exist; nothing else was checked$/)]);
    const md = await runCli(['readiness'], { ...env, DATABASE_URL: db.url.replace(/\/[^/]*$/, '/cutter_no_such_database') });
    expect(md.code).toBe(1);
    expect(md.stdout).toContain('**g8: FAIL** · ready for a live run: **no (g8 FAIL)** — the check could not be completed: database cutter_no_such_database');
  });

  it('an unreachable Redis is FAIL with exit 1, and the database is still shown UNCHANGED', async () => {
    const before = await digestAllTables(db.pool);
    const { code, report } = await readiness(['--target', 'icx-work'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(code).toBe(1);
    expect(report.g8).toBe('FAIL');
    expect(report.failures[0]).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:1 did not answer/);
    expect(report.db_state.every((d) => d.unchanged)).toBe(true);
    expect(await digestAllTables(db.pool)).toEqual(before);
  });

  it('an unknown run, a missing snapshot file or a bad --format is bad input: exit 2', async () => {
    const run = await runCli(['readiness', '--run', 'run-20990101-000000-abcdef'], env);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe('cutter: no run run-20990101-000000-abcdef: see cutter status, or leave out --run [RUN_UNKNOWN]');
    const snap = await runCli(['readiness', '--target', 'icx-work', '--snapshot', files.path('missing.ndjson')], env);
    expect(snap.code).toBe(2);
    expect(snap.stderr).toMatch(/missing\.ndjson does not exist \[SNAPSHOT_NOT_FOUND\]/);
    const format = await runCli(['readiness', '--format', 'xml'], env);
    expect(format.code).toBe(2);
    expect(format.stderr.trim()).toBe("error: option '--format <format>' argument 'xml' is invalid. Allowed choices are md, json.");
  });
});
