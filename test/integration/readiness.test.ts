import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadGateRun } from '../../shared/approval/binding.js';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { storeDecision } from '../../shared/approval/store.js';
import { validateSovereignApproval } from '../../shared/approval/validate.js';
import { parseConfig } from '../../shared/config.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import type { Readiness } from '../../shared/readiness/types.js';
import { createRedis, redisDurability, type RedisClient } from '../../shared/redis.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { startFleet, type Fleet } from '../../workers/fleet.js';
import { runCli } from '../support/cli.js';
import { createDemoDatabase, type TestDatabase } from '../support/db.js';
import { createEmptyKeyring, createTestKey, type TestKeyring, type TestKeyringDir } from '../support/gpg.js';
import { digestAllTables } from '../support/plan-fixtures.js';
import { testQueuePrefix } from '../support/prefix.js';
import { approvalFor, makeKey, waitForGate, writeTrustedKeys, type TestKey } from '../support/sovereign.js';

/**
 * The acceptance path of `cutter readiness`: a freshly seeded database with
 * no GPG key, no sovereign keys, no approvals and the switch off; then each
 * missing item provisioned in turn, each removing exactly its own blocker,
 * until the verdict is READY. Workers run (a live run needs them), and the
 * test Redis is volatile, which CUTTER_ALLOW_VOLATILE_REDIS=true allows.
 */

const DEMO_SNAPSHOT = new URL('../../demo/icx-work.snapshot.ndjson', import.meta.url).pathname;

let db: TestDatabase;
let dir: string;
let gpgKey: TestKeyring;
let keyring: TestKeyringDir;
let sovereign: TestKey;
let sovereignDir: string;
let env: Record<string, string>;
let fleet: Fleet;
let redis: RedisClient;
let volatileRedis: boolean;
let runId: string;
let planSha256: string;

beforeAll(async () => {
  db = await createDemoDatabase('readiness', 'tester');
  dir = mkdtempSync(join(tmpdir(), 'cutter-readiness-'));
  gpgKey = createTestKey();
  keyring = createEmptyKeyring();
  sovereign = makeKey('sovereign-a');
  sovereignDir = join(dir, 'sovereign-keys');
  env = {
    // Readiness runs as the operator's CLI does: as the application's role, not a superuser.
    DATABASE_URL: db.appUrl,
    REDIS_URL: inject('redisUrl'),
    CUTTER_QUEUE_PREFIX: testQueuePrefix('rdy'),
    // The backup key is named, but GNUPGHOME does not hold it yet.
    BACKUP_GPG_FPR: gpgKey.fpr,
    GNUPGHOME: keyring.home,
    BACKUP_DIR: join(dir, 'backups'),
    CUTTER_ALLOW_VOLATILE_REDIS: 'true',
    CUTTER_OPERATOR: 'tester',
    LOG_LEVEL: 'silent',
  };
  mkdirSync(env['BACKUP_DIR'] ?? '', { recursive: true });
  redis = createRedis(env['REDIS_URL'] ?? '');
  volatileRedis = !(await redisDurability(redis)).durable;
  // The workers know where the sovereign keys will be; readiness is told only once they are there.
  fleet = await startFleet({ cfg: parseConfig({ ...env, SOVEREIGN_KEYS: sovereignDir }), log: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await fleet.close();
  // The paused run's gate job and the queues' keys go with the test.
  for (const phase of PHASES) {
    const queue = new Queue(phase, { connection: redis, prefix: env['CUTTER_QUEUE_PREFIX'] ?? '' });
    await queue.obliterate({ force: true });
    await queue.close();
  }
  redis.disconnect();
  await db.drop();
  gpgKey.remove();
  keyring.remove();
  rmSync(dir, { recursive: true, force: true });
});

async function readiness(args: string[]): Promise<{ code: number; report: Readiness; stderr: string }> {
  const r = await runCli(['readiness', '--format', 'json', ...args], env);
  return { code: r.code, report: JSON.parse(r.stdout) as Readiness, stderr: r.stderr };
}

const blocking = (r: Readiness) => r.blockers.filter((b) => b.blocking).map((b) => ({ gap: b.gap, owners: b.owners, form: b.form }));
const runnable = (r: Readiness) => Object.fromEntries(r.packages.map((p) => [p.name, p.runnable]));

/** Name, size and mtime of every file under a directory: what "wrote no file" is checked against. */
function listing(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[])
    .map((name) => {
      const s = statSync(join(root, name));
      return `${name} ${s.size} ${s.mtimeMs}`;
    })
    .sort();
}

async function switchOn(): Promise<boolean> {
  const { rows } = await db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
  return rows[0]?.on ?? true;
}

/** The four items missing on a fresh database, in report order. */
function freshBlockers() {
  return [
    { gap: 'C7', owners: ['operator'], form: `a GPG key with fingerprint ${gpgKey.fpr} in GNUPGHOME (${keyring.home})` },
    { gap: 'SG_1', owners: ['operator'], form: expect.stringMatching(/^SOVEREIGN_KEYS pointing at the sovereign public keys/) as string },
    { gap: 'SG_1', owners: ['operator', 'sovereign'], form: expect.stringMatching(/^SG_1 approval per the approval contract for the first live run of target icx-work, signed by 1 trusted sovereign key/) as string },
    { gap: 'EXEC', owners: ['sovereign'], form: expect.stringMatching(/^EXEC grant for that run per the approval contract \(allowance: execution_enabled=true\)/) as string },
  ];
}

describe('cutter readiness, one item provisioned at a time', () => {
  it('on a fresh database lists exactly the missing GPG key, sovereign keys, SG_1 approval and EXEC grant, and changes nothing', async () => {
    const tables = await digestAllTables(db.pool);
    const files = [...listing(dir), ...listing(keyring.home)];
    expect(await switchOn()).toBe(false);

    const { code, report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(code).toBe(0);
    expect([report.g8, report.ready_for_live_run, report.production_mutation, report.execution_enabled]).toEqual(['PASS', 'no (4 open)', 'NONE', false]);
    expect(blocking(report)).toEqual(freshBlockers());
    expect(report.first_run_path.map((p) => `${p.package} ${p.state}`)).toEqual(
      expect.arrayContaining(['backup runner OPEN', 'grant probe CLOSED/READY', 'approval contract OPEN', 'kill switch CLOSED/READY']) as string[],
    );
    const notes = report.blockers.filter((b) => !b.blocking);
    if (volatileRedis) {
      expect(notes).toEqual([expect.objectContaining({ owners: ['operator'], package: 'Redis durability', form: expect.stringContaining('allowed by CUTTER_ALLOW_VOLATILE_REDIS=true') as string })]);
    } else expect(notes).toEqual([]);
    expect(report.blockers.map((b) => b.id)).toEqual(report.blockers.map((_, i) => i + 1));
    expect(runnable(report)).toMatchObject({
      'backup runner': 'NO',
      'grant probe': 'YES',
      'target intake': 'NO',
      'command package': 'YES',
      'approval contract': 'NO',
      'kill switch': 'YES',
      'deployed version': 'YES',
    });
    expect(report.criteria.map((c) => `${c.id} ${c.status}`)).toEqual(['C1 PASS', 'C2 PASS', 'C3 PASS', 'C4 PASS', 'C5 PASS', 'C6 PASS', 'C7 FAIL']);
    expect(report.packages.find((p) => p.name === 'kill switch')?.verified).toMatch(/^off: a live execute is refused with KILL_SWITCH_OFF/);

    // The report's own proof: every table of both schemas and the switch, UNCHANGED ...
    expect(report.db_state.map((d) => d.table)).toEqual([...Object.keys(tables).sort(), 'execution_enabled()']);
    expect(report.db_state.every((d) => d.unchanged)).toBe(true);
    expect(report.db_state.at(-1)).toEqual({ table: 'execution_enabled()', before: { value: false }, after: { value: false }, unchanged: true });
    // ... and the same seen from outside the command: no table, no switch, no file changed.
    expect(await digestAllTables(db.pool)).toEqual(tables);
    expect(await switchOn()).toBe(false);
    expect([...listing(dir), ...listing(keyring.home)]).toEqual(files);
  });

  it('reads as the report operators know, in five sections, with the same verdict and missing items', async () => {
    const r = await runCli(['readiness', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT], env);
    expect(r.code, r.stderr).toBe(0);
    const md = r.stdout;
    expect(md).toMatch(/^# Readiness report: target icx-work\n\n\*\*g8: PASS\*\* · ready for a live run: \*\*no \(4 open\)\*\* — the check ran to the end and it changed nothing; 4 blocking item\(s\) are open \(3 for operator, 2 for sovereign\)\./);
    expect(md.match(/^## \d\. .*$/gm)).toEqual(['## 1. Database state', '## 2. Packages', '## 3. Missing items', '## 4. First-run path', '## 5. Verdict']);
    expect(md).toMatch(/^\| public\.information_unit \| 158 rows, md5 [0-9a-f]{12} \| 158 rows, md5 [0-9a-f]{12} \| UNCHANGED \|$/m);
    expect(md).toContain('| execution_enabled() | False | False | UNCHANGED |');
    expect(md).toMatch(/^All \d+ items UNCHANGED: \*\*ZERO persistent production mutation\*\* by this check\.$/m);
    expect(md).toContain(`1. **C7** · operator · blocking · package: backup runner\n   - form: a GPG key with fingerprint ${gpgKey.fpr} in GNUPGHOME (${keyring.home})`);
    expect(md).toMatch(/^3\. \*\*SG_1\*\* · operator \+ sovereign · blocking · package: approval contract$/m);
    expect(md).toMatch(/^4\. \*\*EXEC\*\* · sovereign · blocking · package: approval contract$/m);
    expect(md).toContain('```\ng8: PASS\nproduction_mutation: NONE\nexecution_enabled: False\nready_for_live_run: no (4 open)\n```');
  });

  it('importing the GPG key into GNUPGHOME removes exactly that blocker', async () => {
    const exported = execFileSync('gpg', ['--batch', '--homedir', gpgKey.home, '--export', gpgKey.fpr]);
    execFileSync('gpg', ['--batch', '--homedir', keyring.home, '--import'], { input: exported, stdio: ['pipe', 'ignore', 'ignore'] });
    const { code, report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(code).toBe(0);
    expect(report.g8).toBe('PASS');
    expect(blocking(report)).toEqual(freshBlockers().slice(1));
    expect(runnable(report)).toMatchObject({ 'backup runner': 'YES', 'target intake': 'YES' });
    expect(report.criteria.find((c) => c.id === 'C7')?.status).toBe('PASS');
    const backup = report.packages.find((p) => p.name === 'backup runner');
    expect(backup?.checks.join('\n')).toContain(`key ${gpgKey.fpr}, encryption subkey ${gpgKey.encryptionSubkeyId ?? ''}`);
  });

  it('SOVEREIGN_KEYS pointing at the sovereign keys removes exactly that blocker, and the approvals name the key', async () => {
    writeTrustedKeys(sovereignDir, [sovereign]);
    env['SOVEREIGN_KEYS'] = sovereignDir;
    const { code, report } = await readiness(['--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT]);
    expect(code).toBe(0);
    expect(report.g8).toBe('PASS');
    const key = `sovereign-a [${sovereign.keyId}]`;
    expect(blocking(report)).toEqual([
      { gap: 'SG_1', owners: ['operator', 'sovereign'], form: `SG_1 approval per the approval contract for the first live run of target icx-work, signed by 1 of the keys ${key}, once that run has paused at SG_1` },
      { gap: 'EXEC', owners: ['sovereign'], form: `EXEC grant for that run per the approval contract (allowance: execution_enabled=true), signed by 1 of the keys ${key}` },
    ]);
    expect(runnable(report)['approval contract']).toBe('YES');
  });

  it('a live run awaiting approval shows its run id and plan hash in the approval blockers', async () => {
    ({ runId } = await enqueueRun(
      { pool: db.pool, redis, prefix: env['CUTTER_QUEUE_PREFIX'] ?? '' },
      { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'live', operator: 'tester', approvalWindowS: 3600 },
    ));
    ({ planSha256 } = await waitForGate({ db, redis, cfg: { CUTTER_QUEUE_PREFIX: env['CUTTER_QUEUE_PREFIX'] ?? '' } }, runId));
    const tables = await digestAllTables(db.pool);

    const { code, report } = await readiness(['--run', runId]);
    expect(code).toBe(0);
    expect(report.g8).toBe('PASS');
    expect(report.scope).toMatchObject({ target: 'icx-work', run_id: runId, run_status: 'awaiting_approval', plan_sha256: planSha256 });
    const key = `sovereign-a [${sovereign.keyId}]`;
    expect(blocking(report)).toEqual([
      {
        gap: 'SG_1',
        owners: ['sovereign'],
        form: `SG_1 approval for run ${runId} (plan ${planSha256}) per the approval contract, signed by 1 of the keys ${key}, with an allowance of at least max_units=55; transitions=draft->enacted,new->draft,revise`,
      },
      { gap: 'EXEC', owners: ['sovereign'], form: `EXEC grant for run ${runId} (plan ${planSha256}) per the approval contract (allowance: execution_enabled=true), signed by 1 of the keys ${key}` },
    ]);
    expect(report.criteria.find((c) => c.id === 'C4')?.reason).toBe('corpus ICX-WORK is held by this run');
    expect(report.criteria.find((c) => c.id === 'C6')?.reason).toContain(`run ${runId}'s frozen plan ${planSha256}: 55 unit(s)`);
    expect(report.db_state.every((d) => d.unchanged)).toBe(true);
    expect(await digestAllTables(db.pool)).toEqual(tables);
  });

  it('an SG_1 approval for the run removes exactly the SG_1 blocker', async () => {
    await store('SG_1');
    const { code, report } = await readiness(['--run', runId]);
    expect(code).toBe(0);
    expect(report.g8).toBe('PASS');
    expect(blocking(report)).toEqual([{ gap: 'EXEC', owners: ['sovereign'], form: expect.stringMatching(new RegExp(`^EXEC grant for run ${runId} \\(plan ${planSha256}\\)`)) as string }]);
  });

  it('with the EXEC grant in (the switch on for the run) nothing is missing: READY', async () => {
    await store('EXEC');
    expect(await switchOn()).toBe(true);
    const tables = await digestAllTables(db.pool);
    const { code, report } = await readiness(['--run', runId]);
    expect(code).toBe(0);
    expect([report.g8, report.ready_for_live_run]).toEqual(['PASS', 'yes']);
    expect(blocking(report)).toEqual([]);
    expect(report.packages.every((p) => p.runnable === 'YES' || p.name === 'Redis durability')).toBe(true);
    expect(report.packages.find((p) => p.name === 'kill switch')?.verified).toMatch(new RegExp(`^on for run ${runId} alone until `));
    expect(report.db_state.at(-1)).toEqual({ table: 'execution_enabled()', before: { value: true }, after: { value: true }, unchanged: true });
    expect(await digestAllTables(db.pool)).toEqual(tables);

    const md = await runCli(['readiness', '--run', runId], env);
    expect(md.code).toBe(0);
    expect(md.stdout).toContain('**g8: PASS** · ready for a live run: **yes** — the check ran to the end and it changed nothing; nothing blocking is open.');
  });
});

/** Submits a valid approval the way the endpoint stores it (validated, stored, audited; the gate is not released). */
async function store(gate: 'SG_1' | 'EXEC'): Promise<void> {
  const keys = await loadTrustedKeys(sovereignDir);
  const run = await loadGateRun(db.pool, runId);
  if (!run) throw new Error(`no run ${runId}`);
  const envelope = approvalFor({ runId, target: 'icx-work', planSha256 }, gate, sovereign);
  await storeDecision(db.pool, validateSovereignApproval(envelope, { keys, run, now: new Date(), stage: 'submit' }));
}
