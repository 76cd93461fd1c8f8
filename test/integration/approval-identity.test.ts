import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { parseEnvelope } from '../../shared/approval/envelope.js';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { recheckApprovals } from '../../shared/approval/recheck.js';
import { storeDecision } from '../../shared/approval/store.js';
import { verifySigned } from '../../shared/approval/validate.js';
import { parseConfig, type Config } from '../../shared/config.js';
import { createPool, ident, type Pool } from '../../shared/db/pool.js';
import { errorCode } from '../../shared/errors.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { openPhaseQueues } from '../../shared/jobs/queues.js';
import { createRedis, type RedisClient } from '../../shared/redis.js';
import { failRun } from '../../shared/runs/store.js';
import { releaseCorpusLock } from '../../shared/targets/lock.js';
import { approvalGateWorker } from '../../workers/approval-gate/process.js';
import { phaseRunner } from '../../workers/phase-runner.js';
import { createDemoDatabase, type TestDatabase } from '../support/db.js';
import { pauseAtGate, type PausedRun } from '../support/paused-run.js';
import { testQueuePrefix } from '../support/prefix.js';
import { DEMO_SNAPSHOT } from '../support/run-env.js';
import { approvalFor, insertConsumedApprovals, makeKey, postApproval, writeTrustedKeys } from '../support/sovereign.js';

/**
 * No self-approval by identity, not by spelling (DESIGN §3). Runs here are
 * enqueued by a database login of their own (ops_…), as an operator with a
 * login of their own would enqueue them; the operator label
 * (CUTTER_OPERATOR) is whatever the operator typed. A sovereign key named
 * like that login in another case, or mapped to it by identities.json, is
 * refused at submit, by the gate and by execute; another key is accepted.
 */

// Roles are cluster-wide: a name of this run's own, created idempotently, dropped only by this file.
const login = `ops_${randomBytes(4).toString('hex')}`;
const loginKey = makeKey(login.toUpperCase()); // named like the login, in another case
const mappedKey = makeKey('dana'); // identities.json maps it to the login
const opsKey = makeKey('ops'); // the key: refused when the label is OPS, whatever its spelling
const erin = makeKey('erin'); // someone else's key
const silent = pino({ level: 'silent' });

let db: TestDatabase;
let asLogin: Pool;
let redis: RedisClient;
let cfg: Config;
let board: BoardServer;
const keysDir = mkdtempSync(join(tmpdir(), 'cutter-identity-keys-'));
const runs: string[] = [];

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('postgresUrl') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The test database's URL, connecting as `user` (trust auth: no password). */
function urlAs(url: string, user: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = '';
  return u.toString();
}

beforeAll(async () => {
  db = await createDemoDatabase('approval_identity', 'test');
  await admin(`DO $$ BEGIN CREATE ROLE ${ident(login)} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  // What enqueue uses (target, run, corpus lock, audit), granted in this database only.
  for (const sql of [
    `GRANT USAGE ON SCHEMA public, cutter_governance TO ${ident(login)}`,
    `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public, cutter_governance TO ${ident(login)}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public, cutter_governance TO ${ident(login)}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA cutter_governance TO ${ident(login)}`,
  ]) {
    await db.pool.query(sql);
  }
  asLogin = createPool(urlAs(db.url, login), { max: 2, applicationName: 'cutter-test-ops' });
  writeTrustedKeys(keysDir, [loginKey, mappedKey, opsKey, erin]);
  writeFileSync(join(keysDir, 'identities.json'), JSON.stringify({ dana: ` ${login.toUpperCase()} ` }));
  cfg = parseConfig({
    DATABASE_URL: db.url,
    REDIS_URL: inject('redisUrl'),
    CUTTER_QUEUE_PREFIX: testQueuePrefix('ident'),
    SOVEREIGN_KEYS: keysDir,
    SOVEREIGN_QUORUM: '1',
    LOG_LEVEL: 'silent',
  });
  redis = createRedis(cfg.REDIS_URL);
  board = await startBoardServer({
    cfg,
    log: silent,
    port: 0,
    host: '127.0.0.1',
    options: { approvalRateLimit: { windowMs: 60_000, limit: 10_000 }, releaseWaitMs: 100, sweepIntervalMs: 60_000 },
  });
}, 60_000);

afterAll(async () => {
  await board.close();
  for (const phase of PHASES) {
    const queue = new Queue(phase, { connection: redis, prefix: cfg.CUTTER_QUEUE_PREFIX });
    await queue.obliterate({ force: true });
    await queue.close();
  }
  redis.disconnect();
  await asLogin.end();
  await db.drop();
  // Its privileges went with the database; nothing else uses this role.
  await admin(`DROP ROLE IF EXISTS ${ident(login)}`);
  rmSync(keysDir, { recursive: true, force: true });
});

// One run holds the corpus at a time (C4): each test's run ends after it.
afterEach(async () => {
  for (const runId of runs.splice(0)) {
    await failRun(db.pool, { runId, phase: 'approval-gate', code: 'TEST_DONE', message: 'test over' });
    await releaseCorpusLock(db.pool, runId);
  }
  await db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test'`);
});

/** A live run enqueued through the real enqueue path, connected as the ops login, under an operator label; paused at SG_1. */
async function enqueuedByLogin(label: string): Promise<PausedRun> {
  const { runId } = await enqueueRun(
    { pool: asLogin, redis, prefix: cfg.CUTTER_QUEUE_PREFIX },
    { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'live', operator: label, approvalWindowS: 3600 },
  );
  runs.push(runId);
  return pauseAtGate(db.pool, runId);
}

async function recorded(runId: string): Promise<{ operator: string; enqueued_by: string } | undefined> {
  const { rows } = await db.pool.query<{ operator: string; enqueued_by: string }>('SELECT operator, enqueued_by FROM cutter_governance.run WHERE run_id = $1', [runId]);
  return rows[0];
}

async function decisions(runId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ key_name: string }>('SELECT key_name FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY id', [runId]);
  return rows.map((r) => r.key_name);
}

async function adminLogin(): Promise<string> {
  const { rows } = await db.pool.query<{ login: string }>('SELECT session_user AS login');
  return rows[0]?.login ?? '';
}

describe('the login that enqueued a run', () => {
  it('is recorded by the server, whatever the operator label says', async () => {
    const run = await enqueuedByLogin('OPS');
    expect(await recorded(run.runId)).toEqual({ operator: 'OPS', enqueued_by: login });
  });

  it('cannot be chosen by the client: an INSERT naming another enqueued_by stores session_user, and an UPDATE changes nothing', async () => {
    const me = await adminLogin();
    expect(me).not.toBe(login);
    const insert = `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, status, enqueued_by)
                    VALUES ($1, 'icx-work', 'ICX-WORK', 'live', 'OPS', 'failed', $2)`;
    await asLogin.query(insert, ['run-by-login-naming-admin', me]);
    expect((await recorded('run-by-login-naming-admin'))?.enqueued_by).toBe(login);
    await db.pool.query(insert, ['run-by-admin-naming-login', login]);
    expect((await recorded('run-by-admin-naming-login'))?.enqueued_by).toBe(me);

    await asLogin.query(`UPDATE cutter_governance.run SET enqueued_by = $2 WHERE run_id = $1`, ['run-by-login-naming-admin', me]);
    await db.pool.query(`UPDATE cutter_governance.run SET enqueued_by = 'someone-else' WHERE run_id = $1`, ['run-by-login-naming-admin']);
    expect((await recorded('run-by-login-naming-admin'))?.enqueued_by).toBe(login);
  });
});

describe('at submit (POST /runs/:runId/approvals)', () => {
  it.each(['OPS', ' ops ', 'someone-else'])(
    'with CUTTER_OPERATOR %j: the key named like the login and the key mapped to it are refused 403 APPROVAL_SELF_APPROVAL; another key is accepted',
    async (label) => {
      const run = await enqueuedByLogin(label);
      for (const key of [loginKey, mappedKey]) {
        const answer = await postApproval(board.url, run.runId, approvalFor(run, 'SG_1', key));
        expect([key.name, answer.status, answer.json.error?.code]).toEqual([key.name, 403, 'APPROVAL_SELF_APPROVAL']);
        expect(answer.json.error?.message).toContain(login);
      }
      expect(await decisions(run.runId)).toEqual([]);
      const accepted = await postApproval(board.url, run.runId, approvalFor(run, 'SG_1', erin));
      expect([accepted.status, accepted.json['accepted']]).toEqual([201, true]);
      expect(await decisions(run.runId)).toEqual(['erin']);
    },
  );

  it('refuses the key named like the operator label in another spelling (the issue: ops.pem, CUTTER_OPERATOR=OPS)', async () => {
    for (const label of ['OPS', ' ops ']) {
      const run = await enqueuedByLogin(label);
      const answer = await postApproval(board.url, run.runId, approvalFor(run, 'SG_1', opsKey));
      expect([answer.status, answer.json.error?.code]).toEqual([403, 'APPROVAL_SELF_APPROVAL']);
      await failRun(db.pool, { runId: run.runId, phase: 'approval-gate', code: 'TEST_DONE', message: 'next label' });
      await releaseCorpusLock(db.pool, run.runId);
    }
  });
});

describe('the gate and execute check again', () => {
  it('the gate does not open on approvals by the login\'s keys written past the endpoint: it fails closed, naming the refusal', async () => {
    const run = await enqueuedByLogin('someone-else');
    const keys = await loadTrustedKeys(keysDir);
    // Stored as if an older endpoint had let them through: signed and trusted, but never checked against who enqueued.
    await storeDecision(db.pool, verifySigned(parseEnvelope(approvalFor(run, 'SG_1', loginKey)), keys));
    await storeDecision(db.pool, verifySigned(parseEnvelope(approvalFor(run, 'EXEC', mappedKey)), keys));
    const job = { id: `${run.runId}.approval-gate`, data: { runId: run.runId }, attemptsMade: 0, opts: { attempts: 1 }, updateProgress: () => Promise.resolve() } as unknown as Job;
    const deps = { pool: db.pool, cfg, log: silent, redis, queues: openPhaseQueues(redis, cfg.CUTTER_QUEUE_PREFIX) };
    await expect(phaseRunner('approval-gate', approvalGateWorker, deps)(job)).rejects.toThrow(/GATE_BYPASSED/);
    await Promise.all(Object.values(deps.queues).map((q) => q.close()));
    const { rows } = await db.pool.query<{ detail: { invalid: { code: string }[] } }>(
      `SELECT detail FROM cutter_governance.audit_event WHERE kind = 'gate.released_without_approval' AND run_id = $1`,
      [run.runId],
    );
    expect(rows.map((r) => r.detail.invalid.map((i) => i.code))).toEqual([['APPROVAL_SELF_APPROVAL', 'APPROVAL_SELF_APPROVAL']]);
    runs.splice(runs.indexOf(run.runId), 1); // the gate ended it and released the corpus
  });

  it('execute refuses consumed approvals by the login\'s key, reading the login itself; another key\'s pass', async () => {
    const policy = { keysSource: keysDir, quorum: 1 };
    const check = async (run: PausedRun) => {
      const client = await db.pool.connect();
      try {
        // The caller hands over the label only: the login comes from the run row.
        const approvals = await recheckApprovals(client, { ...run, operator: 'someone-else', scope: { unitCount: 0, transitions: [] } }, policy);
        return approvals.sg1Keys;
      } catch (err) {
        return `${errorCode(err)}: ${(err as Error).message}`;
      } finally {
        client.release();
      }
    };
    const own = await enqueuedByLogin('someone-else');
    await insertConsumedApprovals(db.pool, own.runId, loginKey);
    expect(await check(own)).toMatch(/^EXECUTE_NOT_APPROVED: .*APPROVAL_SELF_APPROVAL/);
    await failRun(db.pool, { runId: own.runId, phase: 'execute', code: 'TEST_DONE', message: 'next run' });
    await releaseCorpusLock(db.pool, own.runId);

    const other = await enqueuedByLogin('someone-else');
    await insertConsumedApprovals(db.pool, other.runId, erin);
    expect(await check(other)).toEqual([erin.keyId]);
  });
});
