import { setTimeout as deadline } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { createPool } from '../../shared/db/pool.js';
import { CutterError, exitCodeFor } from '../../shared/errors.js';
import { precheckWorker } from '../../workers/precheck/process.js';
import { runCli, type CliResult } from '../support/cli.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';
import { recordRunTrials, runEffect, trials, violation, type CorpusFingerprint } from './support/outcomes.js';

/**
 * Issue 10, race 1: operators enqueue conflicting runs on one corpus at the
 * same moment. Exactly one run may exist and proceed (C4: one active run per
 * corpus); every other attempt is refused with C4_CORPUS_LOCKED (CLI exit 1,
 * one line, DESIGN §4) and leaves nothing behind: no run row, no job in
 * Redis, no lock. Two real `cutter run` processes, and an 8-way race of
 * in-process enqueues, each with its own database connection as separate
 * processes would have. And the one race where a second enqueue must not be
 * refused: the same idempotency key (a retry racing its original) gets the
 * original run back.
 */

const CLI_TRIALS = trials(2, 10);
const MANY_TRIALS = trials(2, 10);
const MANY_WAYS = 8;

/**
 * Precheck waits until the race is over before the winner's run may move on.
 * Two CLI processes spawned together can still start seconds apart on a
 * loaded machine; if the winner's dry run ended before the other arrived, the
 * other would rightly proceed and the trial would not be a race at all. The
 * hold keeps the winner's run active (queued) until every racer has its
 * answer, which is what "at the same moment" means for C4.
 */
class RaceHold {
  private open: () => void = () => undefined;
  private opened: Promise<void> = Promise.resolve();
  /** Holds every precheck until release(). */
  arm(): void {
    this.opened = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open();
  }
  /** What precheck awaits; a hold never outlasts 30 s, so a test that forgot to release still ends. */
  wait(): Promise<void> {
    return Promise.race([this.opened, deadline(30_000, undefined, { ref: false })]);
  }
}

let env: RunEnv;
const hold = new RaceHold();

beforeAll(async () => {
  env = await createRunEnv('races-c4');
  await env.startFleet({
    precheck: async (call, deps) => {
      await hold.wait();
      return precheckWorker.process(call, deps);
    },
  });
});
afterAll(async () => {
  hold.release();
  await env.close();
});

interface Leftovers {
  runIds: string[];
  locks: { corpus: string; run_id: string }[];
  /** Run ids that jobs in Redis (under this prefix) belong to. */
  redisRunIds: string[];
}

/** What Postgres and Redis hold now: every run, every corpus lock, every run id that any Redis key names. */
async function leftovers(): Promise<Leftovers> {
  const runs = await env.db.pool.query<{ run_id: string }>('SELECT run_id FROM cutter_governance.run ORDER BY created_at');
  const locks = await env.db.pool.query<{ corpus: string; run_id: string }>('SELECT corpus, run_id FROM cutter_governance.corpus_lock');
  const ids = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await env.redis.scan(cursor, 'MATCH', `${env.cfg.CUTTER_QUEUE_PREFIX}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) for (const m of key.matchAll(/run-\d{8}-\d{6}-[0-9a-f]{6}/g)) ids.add(m[0]);
  } while (cursor !== '0');
  return { runIds: runs.rows.map((r) => r.run_id), locks: locks.rows, redisRunIds: [...ids].sort() };
}

/** The run ids that appeared since `before`. */
function newRuns(before: Leftovers, after: Leftovers): string[] {
  return after.runIds.filter((id) => !before.runIds.includes(id));
}

/** The run ids that jobs in Redis newly belong to since `before`. */
function newRedisRuns(before: Leftovers, after: Leftovers): string[] {
  return after.redisRunIds.filter((id) => !before.runIds.includes(id) && !before.redisRunIds.includes(id));
}

/** The winner ran to its end: a dry run succeeded, changed nothing, and let go of the corpus. */
async function expectDryRunClean(winner: string, before: CorpusFingerprint): Promise<void> {
  const view = await env.waitForEnd(winner, 90_000);
  expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
  expect(violation(await runEffect(env.db.pool, winner, before), 'dry')).toBeNull();
  const after = await leftovers();
  expect(after.locks).toEqual([]);
  // Nothing in Redis names a run that Postgres does not know: a refused enqueue added no jobs.
  expect(after.redisRunIds.filter((id) => !after.runIds.includes(id))).toEqual([]);
}

/**
 * A lock row left by a run that has already ended, as a worker killed between
 * ending the run and releasing its lock leaves it: the racers must then
 * compete for the takeover (UPDATE … WHERE run_id = the stale holder), not
 * for the INSERT.
 */
async function leaveStaleLock(endedRunId: string): Promise<void> {
  await env.db.pool.query(
    `INSERT INTO cutter_governance.corpus_lock (corpus, run_id) VALUES ('ICX-WORK', $1)`,
    [endedRunId],
  );
}

describe('races: conflicting enqueues on one corpus (C4)', () => {
  it(`two \`cutter run\` processes at the same instant: one run, the other refused with C4 (${CLI_TRIALS} trials)`, async () => {
    let refused = 0;
    let ended = 0;
    for (let trial = 0; trial < CLI_TRIALS; trial += 1) {
      const before = await leftovers();
      const corpusBefore = await env.corpus();
      hold.arm();
      const racers = ['op-a', 'op-b'].map((operator) =>
        runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry'], { ...env.env, CUTTER_OPERATOR: operator }),
      );
      // The loser exits as soon as it is refused; the winner follows its run to the end, which the hold stops at precheck.
      await Promise.race(racers);
      const during = await leftovers();
      hold.release();
      const results: CliResult[] = await Promise.all(racers);

      const created = newRuns(before, during);
      expect(created, `trial ${trial}: runs created; the CLIs said ${JSON.stringify(results)}`).toHaveLength(1);
      const winner = created[0] ?? '';
      expect(during.locks).toEqual([{ corpus: 'ICX-WORK', run_id: winner }]);
      expect(newRedisRuns(before, during)).toEqual([winner]);
      const won = results.filter((r) => r.code === 0);
      const lost = results.filter((r) => r.code !== 0);
      expect(won, JSON.stringify(results)).toHaveLength(1);
      expect(won[0]?.stdout).toContain(`enqueued dry run ${winner}`);
      expect(won[0]?.stdout).toContain(`run ${winner}: succeeded, verdict PASS`);
      // DESIGN §4: refused = exit 1, one clear line naming what is wrong and what to do, no stack trace.
      expect(lost).toHaveLength(1);
      expect(lost[0]?.code).toBe(1);
      expect(lost[0]?.stdout).toBe('');
      const line = lost[0]?.stderr.trimEnd() ?? '';
      expect(line.split('\n')).toHaveLength(1);
      expect(line).toMatch(new RegExp(`^cutter: corpus ICX-WORK is held by run ${winner} \\(.*\\): wait for it to finish, or cancel it \\(cutter cancel ${winner} --reason TEXT\\) \\[C4_CORPUS_LOCKED\\]$`));
      refused += 1;

      await expectDryRunClean(winner, corpusBefore);
      expect(newRuns(before, await leftovers())).toEqual([winner]);
      ended += 1;
    }
    recordRunTrials({
      group: 'races',
      fault: 'two `cutter run` processes enqueue on one corpus at once',
      tries: CLI_TRIALS,
      ended,
      notes: `one run per trial; ${refused} of ${CLI_TRIALS} second enqueues refused with C4_CORPUS_LOCKED (exit 1), none left a run row, job or lock`,
    });
  }, 60_000 + CLI_TRIALS * 30_000);

  it(`${MANY_WAYS} enqueues at once, on a free corpus and on one with a stale lock: one run, ${MANY_WAYS - 1} C4 refusals (${MANY_TRIALS} trials)`, async () => {
    // One pool of one connection per racer: the transactions really run side by side, as from separate processes.
    const pools = Array.from({ length: MANY_WAYS }, (_, i) => createPool(env.db.url, { max: 1, applicationName: `race-${i}` }));
    let refused = 0;
    let ended = 0;
    let staleTakeovers = 0;
    let previousWinner: string | undefined;
    try {
      for (let trial = 0; trial < MANY_TRIALS; trial += 1) {
        const stale = trial % 2 === 1 && previousWinner !== undefined;
        if (stale && previousWinner) await leaveStaleLock(previousWinner);
        const before = await leftovers();
        const corpusBefore = await env.corpus();
        hold.arm();
        // Every racer is connected before the start, so no one wins by being first to get a connection.
        await Promise.all(pools.map((p) => p.query('SELECT 1')));
        const settled = await Promise.allSettled(
          pools.map((pool, i) =>
            enqueueRun(
              { pool, redis: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX },
              { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'dry', operator: `op-${i}`, approvalWindowS: 3600 },
            ),
          ),
        );
        const during = await leftovers();
        hold.release();

        const winners = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        expect(winners, `trial ${trial}`).toHaveLength(1);
        const winner = winners[0]?.runId ?? '';
        expect(winners[0]?.created).toBe(true);
        expect(newRuns(before, during)).toEqual([winner]);
        expect(during.locks).toEqual([{ corpus: 'ICX-WORK', run_id: winner }]);
        expect(newRedisRuns(before, during)).toEqual([winner]);
        for (const s of settled) {
          if (s.status === 'fulfilled') continue;
          const err: unknown = s.reason;
          expect(err, String(err)).toBeInstanceOf(CutterError);
          expect(err).toMatchObject({ code: 'C4_CORPUS_LOCKED', kind: 'refused' });
          expect((err as Error).message).toContain(`held by run ${winner}`);
          expect(exitCodeFor(err)).toBe(1);
          refused += 1;
        }
        if (stale) staleTakeovers += 1;

        await expectDryRunClean(winner, corpusBefore);
        expect(newRuns(before, await leftovers())).toEqual([winner]);
        ended += 1;
        previousWinner = winner;
      }
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    recordRunTrials({
      group: 'races',
      fault: `${MANY_WAYS} enqueues on one corpus at once (free or stale lock)`,
      tries: MANY_TRIALS,
      ended,
      notes: `one run per trial (${staleTakeovers} over a stale lock); ${refused} of ${MANY_TRIALS * (MANY_WAYS - 1)} others refused with C4_CORPUS_LOCKED, none left a run row, job or lock`,
    });
  }, 60_000 + MANY_TRIALS * 30_000);

  it(`${MANY_WAYS} enqueues with one idempotency key at once (a retry racing the original): one run, every caller gets it`, async () => {
    const pools = Array.from({ length: MANY_WAYS }, (_, i) => createPool(env.db.url, { max: 1, applicationName: `retry-${i}` }));
    let ended = 0;
    try {
      for (let trial = 0; trial < MANY_TRIALS; trial += 1) {
        const before = await leftovers();
        const corpusBefore = await env.corpus();
        const idempotencyKey = `races-retry-${trial}-${Date.now()}`;
        hold.arm();
        await Promise.all(pools.map((p) => p.query('SELECT 1')));
        const settled = await Promise.allSettled(
          pools.map((pool) =>
            enqueueRun(
              { pool, redis: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX },
              { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'dry', operator: 'op-retry', idempotencyKey, approvalWindowS: 3600 },
            ),
          ),
        );
        const during = await leftovers();
        hold.release();

        const created = newRuns(before, during);
        expect(created, `trial ${trial}`).toHaveLength(1);
        const winner = created[0] ?? '';
        // The same key is the same request: no caller is refused, every one is told the run's id.
        expect(settled.map((s) => (s.status === 'fulfilled' ? s.value.runId : `rejected: ${String(s.reason)}`))).toEqual(pools.map(() => winner));
        expect(settled.filter((s) => s.status === 'fulfilled' && s.value.created)).toHaveLength(1);
        expect(newRedisRuns(before, during)).toEqual([winner]);
        await expectDryRunClean(winner, corpusBefore);
        ended += 1;
      }
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    recordRunTrials({
      group: 'races',
      fault: `${MANY_WAYS} enqueues with one idempotency key at once`,
      tries: MANY_TRIALS,
      ended,
      notes: `one run per trial; every one of the ${MANY_WAYS} callers got its run id back (created once)`,
    });
  }, 60_000 + MANY_TRIALS * 30_000);
});
