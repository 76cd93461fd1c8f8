import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { parseConfig } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, ident, type Pool, type PoolClient } from '../../shared/db/pool.js';
import { ensureDemoGpgKey } from '../../shared/demo/gpg-key.js';
import { registerDemoWorkTarget, seedDemo } from '../../shared/demo/seed.js';
import { localSovereign, type LocalSovereign } from '../../shared/demo/sovereign.js';
import { jobId, PHASE_POLICY, PHASES, type Phase } from '../../shared/jobs/catalog.js';
import type { PhaseMoment } from '../../shared/jobs/moments.js';
import { createRedis } from '../../shared/redis.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { hasEnded } from '../../shared/runs/status.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/pg-server.js';
import { waitFor } from '../support/poll.js';
import { testQueuePrefix } from '../support/prefix.js';
import { armSwitch, createRunEnv, DEMO_SNAPSHOT, type RunEnv, STAND_IN_GATE } from '../support/run-env.js';
import { withDatabase } from '../support/services.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { CHAOS_FULL, recordOutcome, runEffect, trials, violation, type CorpusFingerprint, type RunEffect } from './support/outcomes.js';

/**
 * Postgres faults during a live run (issue 10): the execute transaction's
 * backend terminated mid-apply (pg_terminate_backend, on the shared server),
 * and the server itself stopped immediately and started again mid-run (a
 * private cluster, so the shared one is never touched). Every run must end
 * succeeded with its plan applied exactly once, or failed closed with nothing
 * applied; and the worker processes must live through the fault (a dropped
 * connection is an 'error' event that used to kill them).
 */

const NOT_EXECUTE = PHASES.filter((p) => p !== 'execute');
/** How long a run may take to end after its fault: retries, a stall pick-up (~7 s) and the rest of the run. */
const END_DEADLINE_MS = 60_000;

/** One run's verdict; survived: every worker process that lived through the fault still runs. */
interface Trial { effect: RunEffect; violation: string | null; survived: boolean; logs: string; code: string | null }

const alive = (w: WorkerProcess) => w.child.exitCode === null && w.child.signalCode === null;

/** Judges a run from Postgres once it has ended (a run that never ends is judged as it stands: lost). */
async function judge(pool: Pool, runId: string, before: CorpusFingerprint, survivors: WorkerProcess[], all: WorkerProcess[]): Promise<Trial> {
  const end = await waitFor(`run ${runId} to end`, async () => {
    const { rows } = await pool.query<{ status: string; code: string | null }>('SELECT status, error_code AS code FROM cutter_governance.run WHERE run_id = $1', [runId]);
    return hasEnded(rows[0]?.status ?? '') ? rows[0] : undefined;
  }, { deadlineMs: END_DEADLINE_MS, stepMs: 50 }).catch(() => undefined);
  const effect = await runEffect(pool, runId, before);
  const logs = all.map((w) => w.stderr()).join('\n').slice(-4000);
  return { effect, violation: violation(effect, 'live'), survived: survivors.every(alive), logs, code: end?.code ?? null };
}

/** Asserts the invariant for every trial and records the class for RELIABILITY.md. */
function tally(fault: string, results: Trial[], notes: string): void {
  const count = (p: (t: Trial) => boolean) => results.filter(p).length;
  const ended = count((t) => hasEnded(t.effect.status));
  recordOutcome({
    group: 'Postgres', fault, tries: results.length, runsEnded: ended,
    doubleApplications: count((t) => t.effect.applied === 'double'),
    partialApplications: count((t) => t.effect.applied === 'partial'),
    lostRuns: results.length - ended, forgeriesAccepted: 0,
    notes: `${count((t) => t.effect.status === 'succeeded')} succeeded (plan applied once), ` +
      `${count((t) => t.effect.status !== 'succeeded' && t.effect.applied === 'none')} failed closed (nothing applied` +
      `${results.filter((t) => t.code).map((t) => `, ${t.code ?? ''}`).join('')}); ` +
      `worker processes survived the fault in ${count((t) => t.survived)}/${results.length}; ${notes}`,
  });
  for (const t of results) {
    expect(t.violation, `${fault}: ${JSON.stringify(t.effect)}\n${t.logs}`).toBeNull();
    expect(t.survived, `${fault}: a worker process died\n${t.logs}`).toBe(true);
  }
}

/**
 * Makes execute stop mid-apply on purpose rather than by luck: an uncommitted
 * unit_version row with the key (unit, post_version) that the plan's first
 * revised unit is about to get. Execute updates units, and its version
 * INSERT then waits on this transaction, with unit rows already written in
 * its own open transaction (whatever the apply's statement layout).
 */
async function holdVersionSlot(pool: Pool, runId: string): Promise<PoolClient> {
  const client = await pool.connect();
  await client.query('BEGIN');
  const taken = await client.query(
    `INSERT INTO public.unit_version (unit_id, version, body, body_sha256)
     SELECT u.id, i.post_version, 'held by the test', encode(sha256(convert_to('held by the test', 'UTF8')), 'hex')
       FROM cutter_governance.cut_change_item i
       JOIN cutter_governance.run r ON r.run_id = i.run_id
       JOIN public.information_unit u ON u.corpus = r.corpus AND u.key = i.key
      WHERE i.run_id = $1 AND i.op <> 'create' AND i.post_body IS NOT NULL
      ORDER BY i.key LIMIT 1`,
    [runId],
  );
  if (taken.rowCount !== 1) throw new Error(`run ${runId} plans no new version of an existing unit to hold`);
  return client;
}

/** The execute backend waiting mid-apply, once it has written unit rows in its open transaction. */
async function blockedApply(pool: Pool): Promise<number> {
  const find = async () => {
    // xmax of a unit's committed row = the xid of the open transaction that has updated it.
    const { rows } = await pool.query<{ pid: number }>(
      `SELECT a.pid FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.application_name = 'cutter-worker' AND a.wait_event_type = 'Lock'
          AND EXISTS (SELECT 1 FROM public.information_unit u WHERE u.xmax = a.backend_xid)`,
    );
    return rows[0];
  };
  try {
    return (await waitFor('execute to wait mid-apply', find, { deadlineMs: END_DEADLINE_MS, stepMs: 20 })).pid;
  } catch (err) {
    const seen = await pool.query(`SELECT application_name, state, wait_event_type, wait_event, left(query, 80) AS query FROM pg_stat_activity WHERE datname = current_database()`);
    throw new Error(`${(err as Error).message}; backends: ${JSON.stringify(seen.rows)}`, { cause: err });
  }
}

/** Resolves once the job's lock was renewed: its worker's event loop has run since the caller's last step. */
async function lockRenewed(env: RunEnv, job: string): Promise<void> {
  const key = `${env.cfg.CUTTER_QUEUE_PREFIX}:execute:${job}:lock`;
  let low = Infinity;
  await waitFor(`the lock of ${job} to be renewed`, async () => {
    const ttl = await env.redis.pttl(key);
    if (ttl > low + 200) return true;
    low = Math.min(low, ttl);
    return undefined;
  }, { deadlineMs: 10_000, stepMs: 50 });
}

/**
 * Stands in for an opened gate (as run-crash.test.ts does): consumed
 * approvals, the kill switch on for the run, and then whatever the trial
 * wants in place before execute starts.
 */
const armingGate = (env: RunEnv, before: { hook?: (runId: string) => Promise<void> }): PhaseProcessor<'approval-gate'> => async ({ run }) => {
  await armSwitch(env, run.run_id);
  await before.hook?.(run.run_id);
  return STAND_IN_GATE;
};

describe('the execute backend terminated (pg_terminate_backend)', () => {
  const workers: WorkerProcess[] = [];
  let env: RunEnv | undefined;
  // What the stand-in gate does last, per trial (armingGate).
  const gate: { hook?: (runId: string) => Promise<void> } = {};
  afterAll(async () => {
    for (const w of workers) await w.kill();
    await closeEnv();
  });
  async function closeEnv(): Promise<void> {
    const closing = env; // closed once, even when a trial failed half-way
    env = undefined;
    await closing?.close();
  }

  /** A fresh database per trial (a live run changes the corpus); execute in a worker process, the rest in-process. */
  async function stage(label: string): Promise<RunEnv> {
    await closeEnv();
    delete gate.hook;
    const e = await createRunEnv(label);
    env = e;
    await e.startFleet({ 'approval-gate': armingGate(e, gate) }, NOT_EXECUTE);
    return e;
  }
  const worker = async (e: RunEnv, fault?: PhaseMoment) => {
    const w = await startWorkerProcess({ ...e.env, LOG_LEVEL: 'warn' }, { phases: ['execute'], fault });
    workers.push(w);
    return w;
  };

  it('while its apply statement runs: the worker lives on, nothing is half-applied', async () => {
    const results: Trial[] = [];
    for (let i = 0; i < trials(1, 3); i += 1) {
      const e = await stage('pgterm');
      const w = await worker(e);
      const before = await e.corpus();
      let blocker: PoolClient | undefined;
      gate.hook = async (runId) => {
        blocker = await holdVersionSlot(e.db.pool, runId);
      };
      try {
        const runId = await e.enqueue('live', { approvalWindowS: 1 });
        const pid = await blockedApply(e.db.pool);
        await e.db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
        await blocker?.query('ROLLBACK');
        results.push(await judge(e.db.pool, runId, before, [w], [w]));
      } finally {
        blocker?.release(true);
      }
    }
    tally('pg_terminate_backend of execute mid-apply (statement running)', results, 'terminated while its version INSERT waited, unit rows already updated in its transaction');
  });

  it('while its transaction is open before COMMIT: rolled back, and a successor applies the plan once', async () => {
    const results: Trial[] = [];
    for (let i = 0; i < trials(1, 2); i += 1) {
      const e = await stage('pgtermidle');
      const doomed = await worker(e, 'execute.middle');
      const before = await e.corpus();
      const runId = await e.enqueue('live', { approvalWindowS: 1 });
      await doomed.paused;
      const { rows } = await e.db.pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'cutter-worker' AND state = 'idle in transaction'`,
      );
      expect(rows).toHaveLength(1);
      const pid = rows[0]?.pid;
      await e.db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor('the terminated backend to be gone', async () => {
        const left = await e.db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
        return left.rowCount === 0 ? true : undefined;
      });
      // The whole apply was in that transaction: nothing of it is left.
      expect(await e.corpus()).toEqual(before);
      // The paused worker holds a dead client, which must not have killed it: asked once it has run since.
      const survived = await lockRenewed(e, jobId(runId, 'execute')).then(() => alive(doomed), () => false);
      await doomed.kill();
      const successor = await worker(e);
      const trial = await judge(e.db.pool, runId, before, [successor], [doomed, successor]);
      results.push({ ...trial, survived: trial.survived && survived });
    }
    tally('pg_terminate_backend of execute idle in transaction (paused before COMMIT), worker then SIGKILLed', results, 'a successor worker picked the stalled job up');
  });
});

describe('PostgreSQL restarted mid-run (a private cluster)', () => {
  let server: PrivatePostgres, admin: Pool, sovereign: LocalSovereign;
  let dir: string, gnupgHome: string, fpr: string;
  const TEMPLATE = 'cutter_pf_template';

  beforeAll(async () => {
    server = await startPrivatePostgres();
    admin = createPool(server.url, { max: 2, applicationName: 'cutter-test' });
    dir = mkdtempSync(join(tmpdir(), 'cutter-pgfaults-'));
    gnupgHome = join(dir, 'gnupg');
    fpr = await ensureDemoGpgKey(gnupgHome);
    sovereign = localSovereign(join(dir, 'sovereign'));
    // Migrated and seeded once (roles are cluster-wide: migrate creates them); every trial clones it.
    await migrate(withDatabase(server.url, TEMPLATE), { execRole: 'cutter_exec' });
    const pool = createPool(withDatabase(server.url, TEMPLATE), { max: 2 });
    await seedDemo(pool, 'tester', { sovereignDir: join(dir, 'sovereign') });
    await registerDemoWorkTarget(pool, 'tester');
    await pool.end();
  });
  afterAll(async () => {
    await admin?.end();
    await server?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  type Stage = Awaited<ReturnType<typeof stage>>;

  /** A database of its own on the private server (a clone of the template), a queue prefix, worker processes. */
  async function stage() {
    const db = `cutter_pf_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${ident(db)} TEMPLATE ${ident(TEMPLATE)}`);
    const env = {
      DATABASE_URL: withDatabase(server.url, db),
      REDIS_URL: inject('redisUrl'),
      CUTTER_QUEUE_PREFIX: testQueuePrefix('pgf'),
      BACKUP_GPG_FPR: fpr, GNUPGHOME: gnupgHome, BACKUP_DIR: join(dir, 'backups', db),
      CUTTER_ALLOW_VOLATILE_REDIS: 'true', CUTTER_OPERATOR: 'tester', SOVEREIGN_KEYS: sovereign.keysDir,
      LOG_LEVEL: process.env['PGF_LOG'] ?? 'warn',
    };
    mkdirSync(env.BACKUP_DIR, { recursive: true });
    const cfg = parseConfig(env);
    const pool = createPool(env.DATABASE_URL, { max: 4, applicationName: 'cutter-test' });
    const redis = createRedis(cfg.REDIS_URL);
    const workers: WorkerProcess[] = [];
    return {
      db, pool, cfg, env, redis, workers,
      worker: async (phases: readonly Phase[], fault?: PhaseMoment) => {
        const w = await startWorkerProcess(env, { phases, fault });
        workers.push(w);
        return w;
      },
      close: async () => {
        for (const w of workers) await w.kill();
        redis.disconnect();
        await pool.end();
        await admin.query(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`);
      },
    };
  }

  async function enqueue(s: Stage): Promise<string> {
    const { runId } = await enqueueRun(
      { pool: s.pool, redis: s.redis, prefix: s.cfg.CUTTER_QUEUE_PREFIX },
      { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'live', operator: 'tester', approvalWindowS: 3600 },
    );
    return runId;
  }

  /** Signs SG_1 + EXEC through the real submit path once the run waits at the gate (unless it ended first), after `first`. */
  async function approveWhenPaused(s: Stage, runId: string, first?: () => Promise<void>): Promise<void> {
    const status = await waitFor('the run to pause at SG_1 or end', async () => {
      const { rows } = await s.pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
      const st = rows[0]?.status ?? '';
      return st === 'awaiting_approval' || hasEnded(st) ? st : undefined;
    }, { deadlineMs: END_DEADLINE_MS, stepMs: 20 });
    if (status !== 'awaiting_approval') return;
    await first?.();
    await sovereign.approve({ cfg: s.cfg, pool: s.pool, redis: s.redis }, runId);
  }

  /** Keeps the server down for ms (the fault's length), checking all along that no worker process dies of it. */
  async function outage(ms: number, workers: WorkerProcess[]): Promise<void> {
    const until = Date.now() + ms;
    await waitFor(`an outage of ${ms} ms`, () => {
      if (!workers.every(alive)) throw new Error(`a worker process died while Postgres was down:\n${workers.map((w) => w.stderr()).join('\n')}`);
      return Date.now() >= until ? true : undefined;
    }, { deadlineMs: ms + 5_000, stepMs: 100 });
  }

  async function trial(s: Stage, body: (s: Stage, before: CorpusFingerprint) => Promise<{ runId: string; survivors: WorkerProcess[] }>): Promise<Trial> {
    try {
      const before = await fingerprintCorpusTables(s.pool);
      const { runId, survivors } = await body(s, before);
      return await judge(s.pool, runId, before, survivors, s.workers);
    } finally {
      if (server.pid() === undefined) await server.start(); // a trial that failed mid-outage
      await s.close();
    }
  }

  it('immediately, with execute\'s transaction open before COMMIT: rolled back by recovery, applied once by a successor', async () => {
    const results: Trial[] = [];
    for (let i = 0; i < trials(1, 2); i += 1) {
      results.push(await trial(await stage(), async (s, before) => {
        const rest = await s.worker(NOT_EXECUTE);
        const doomed = await s.worker(['execute'], 'execute.middle');
        const runId = await enqueue(s);
        await approveWhenPaused(s, runId);
        await doomed.paused;
        await server.stopImmediate();
        await server.start();
        expect(await fingerprintCorpusTables(s.pool)).toEqual(before);
        expect(alive(rest) && alive(doomed), 'worker processes died with the restart').toBe(true);
        await doomed.kill();
        const successor = await s.worker(['execute']);
        return { runId, survivors: [rest, successor] };
      }));
    }
    tally('immediate stop + start with execute paused before COMMIT, then the paused worker SIGKILLed', results, 'a successor worker picked the stalled job up');
  });

  // A short outage is a restart; a long one outlasts execute's whole retry budget (1 s + 2 s backoff).
  const budgetMs = PHASE_POLICY.execute.backoffMs * (2 ** (PHASE_POLICY.execute.attempts - 1) - 1);
  for (const [label, downMs] of [['at once', 0], [`after ${budgetMs + 1500} ms down (beyond execute's retry budget)`, budgetMs + 1500]] as const) {
    it(`immediately, restarted ${label}, while execute waits mid-apply: nothing half-applied, the worker lives on`, async () => {
      const results: Trial[] = [];
      for (let i = 0; i < trials(1, downMs ? 2 : 3); i += 1) {
        results.push(await trial(await stage(), async (s) => {
          const w = await s.worker(PHASES);
          const runId = await enqueue(s);
          let blocker: PoolClient | undefined;
          try {
            await approveWhenPaused(s, runId, async () => {
              blocker = await holdVersionSlot(s.pool, runId);
            });
            await blockedApply(s.pool);
            await server.stopImmediate();
          } finally {
            blocker?.release(true); // its connection died with the server (or the trial failed)
          }
          await outage(downMs, [w]);
          await server.start();
          return { runId, survivors: [w] };
        }));
      }
      tally(`immediate stop, start ${label}, execute waiting mid-apply`, results, 'one worker process serving every phase');
    });
  }

  it('immediately, while the run is in another phase: the run retries or fails closed', async () => {
    const phases: Phase[] = CHAOS_FULL ? ['precheck', 'discover', 'cutplan', 'backup', 'verify'] : ['backup'];
    const results: Trial[] = [], hit: string[] = [];
    for (const phase of phases) {
      results.push(await trial(await stage(), async (s) => {
        const w = await s.worker(PHASES);
        const runId = await enqueue(s);
        const afterGate = PHASES.indexOf(phase) > PHASES.indexOf('approval-gate');
        if (afterGate) await approveWhenPaused(s, runId);
        const seen = await waitFor(`the run to reach ${phase}`, async () => {
          const { rows } = await s.pool.query<{ phase: string | null; status: string }>('SELECT phase, status FROM cutter_governance.run WHERE run_id = $1', [runId]);
          const r = rows[0];
          return r && (r.phase === phase || hasEnded(r.status) || PHASES.indexOf(r.phase as Phase) > PHASES.indexOf(phase)) ? r : undefined;
        }, { deadlineMs: END_DEADLINE_MS, stepMs: 5 });
        hit.push(`${phase} (${seen.phase === phase ? 'in it' : `at ${seen.phase ?? '?'}`}`);
        await server.stopImmediate();
        await server.start();
        if (!afterGate) await approveWhenPaused(s, runId);
        return { runId, survivors: [w] };
      }));
      hit.push(`${hit.pop() ?? ''} → ${results.at(-1)?.effect.status ?? '?'})`);
    }
    tally('immediate stop + start while the run is in a phase before or after execute', results, `restart seen at ${hit.join(', ')}`);
  });
});
