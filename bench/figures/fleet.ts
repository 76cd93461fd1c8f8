import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { config } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { PHASES, type RunMode } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import { IN_FLIGHT_STATUSES, inFlight, RUN_STATUSES } from '../../shared/runs/status.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { summary } from '../support/approval-harness.js';
import { benchLiveSettings, obliterateQueues, untilStatus } from '../support/live-run.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * Fleet throughput (issue 29, scale out): n runs enqueued at once, each on
 * its own corpus (the corpus lock would serialise runs on one corpus),
 * served by WORKER_PROCESSES `cutter worker` child processes of the built
 * CLI, as a user adds machines. Every run must end succeeded with verdict
 * PASS and none may be lost; each row is runs per minute, first enqueue to
 * last end, and the queue wait (the run's enqueue, its row's created_at, to
 * its first phase's start, both on PostgreSQL's clock) at the median and p95.
 * One row of dry runs, one of live runs, each approved (SG_1 + EXEC, signed
 * by a local sovereign key) through the real submit path as it pauses.
 */

const UNITS_PER_CORPUS = 100;
const WORKER_PROCESSES = 4;
const PLAN_UNITS = 10;
const CLI = fileURLToPath(new URL('../../producers/cli/main.js', import.meta.url));

// Dry and live runs get corpora of their own: FLEET-001… and LIVE-001….
const PREFIX: Record<RunMode, string> = { dry: 'FLEET', live: 'LIVE' };
const corpusName = (mode: RunMode, i: number) => `${PREFIX[mode]}-${String(i).padStart(3, '0')}`;
const targetName = (mode: RunMode, i: number) => corpusName(mode, i).toLowerCase();
const body = (k: string) => `${k}: fleet benchmark unit, text of version 1.`;

/** n corpora of draft units and one target each, built server-side. */
async function seedCorpora(pool: Pool, mode: RunMode, n: number): Promise<void> {
  await pool.query(
    `INSERT INTO public.information_unit (corpus, key, state, current_version)
     SELECT $3 || '-' || lpad(c::text, 3, '0'), $3 || '-' || lpad(c::text, 3, '0') || '/' || lpad(g::text, 4, '0'), 'draft', 1
       FROM generate_series(1, $1::int) c, generate_series(1, $2::int) g`,
    [n, UNITS_PER_CORPUS, PREFIX[mode]],
  );
  await pool.query(
    `INSERT INTO public.unit_version (unit_id, version, body, body_sha256)
     SELECT u.id, 1, b.body, encode(sha256(convert_to(b.body, 'UTF8')), 'hex')
       FROM public.information_unit u
      CROSS JOIN LATERAL (SELECT u.key || ': fleet benchmark unit, text of version 1.' AS body) b
      WHERE u.corpus LIKE $1 || '-%'`,
    [PREFIX[mode]],
  );
  await pool.query(
    `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
     SELECT lower($3) || '-' || lpad(c::text, 3, '0'), $3 || '-' || lpad(c::text, 3, '0'), 'bench', false, $2, ARRAY['draft->enacted'], 'bench', 'fleet benchmark'
       FROM generate_series(1, $1::int) c`,
    [n, PLAN_UNITS, PREFIX[mode]],
  );
  await pool.query('ANALYZE public.information_unit, public.unit_version');
}

/** One snapshot per corpus, enacting its first PLAN_UNITS drafts. */
function writeSnapshots(dir: string, mode: RunMode, n: number): string[] {
  return Array.from({ length: n }, (_, r) => {
    const lines = Array.from({ length: PLAN_UNITS }, (_, u) => {
      const k = `${corpusName(mode, r + 1)}/${String(u + 1).padStart(4, '0')}`;
      return JSON.stringify({ key: k, state: 'enacted', body: body(k) });
    });
    const file = join(dir, `${mode}-${r + 1}.ndjson`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  });
}

/** Polls (every 20 ms) until the kill switch is on for no run: an EXEC grant for another run is refused while it is. */
async function untilSwitchFree(pool: Pool, deadlineMs = 600_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { rows } = await pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
    if (rows[0]?.on === false) return;
    if (Date.now() > deadline) throw new Error(`the kill switch was still on after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How these runs ended, and how long each waited in the queue before its first phase started. */
async function outcomesOf(pool: Pool, runIds: string[]): Promise<{ passed: number; lost: number; waitsMs: number[]; seen: string }> {
  const { rows } = await pool.query<{ status: string; verdict: string | null; error_code: string | null; wait_ms: number | null }>(
    `SELECT r.status, r.verdict, r.error_code,
            (SELECT extract(epoch FROM min(p.started_at) - r.created_at) * 1000 FROM cutter_governance.run_phase p WHERE p.run_id = r.run_id)::float8 AS wait_ms
       FROM cutter_governance.run r WHERE r.run_id = ANY($1)`,
    [runIds],
  );
  const tally = new Map<string, number>();
  for (const r of rows) tally.set(`${r.status}/${r.verdict ?? '-'}/${r.error_code ?? '-'}`, (tally.get(`${r.status}/${r.verdict ?? '-'}/${r.error_code ?? '-'}`) ?? 0) + 1);
  return {
    passed: rows.filter((r) => r.status === 'succeeded' && r.verdict === 'PASS').length,
    // Lost: no run row at all, or failed by the reconciler because Redis no longer had its jobs.
    lost: runIds.length - rows.length + rows.filter((r) => r.error_code?.startsWith('RUN_LOST') === true).length,
    waitsMs: rows.map((r) => r.wait_ms).filter((w): w is number => w !== null),
    seen: JSON.stringify(Object.fromEntries(tally)),
  };
}

/** The median seconds of each phase over these runs, in phase order: what a run's time is made of. */
async function phaseMedians(pool: Pool, runIds: string[]): Promise<string> {
  const { rows } = await pool.query<{ phase: string; s: number }>(
    `SELECT phase, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))::float8 AS s
       FROM cutter_governance.run_phase WHERE run_id = ANY($1) AND finished_at IS NOT NULL GROUP BY phase`,
    [runIds],
  );
  return PHASES.flatMap((phase) => rows.filter((r) => r.phase === phase).map((r) => `${phase} ${r.s.toFixed(2)} s`)).join(', ');
}

/** Starts `cutter worker` and resolves once it prints that it is ready. */
async function startWorker(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('worker ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`cutter worker exited ${code ?? '?'} before ready: ${stderr}`)));
  });
  return child;
}

async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

const ENDED = RUN_STATUSES.filter((status) => !inFlight(status));
/** Enqueues in flight at once (the producer's pool has two connections more, for the polls). */
const ENQUEUERS = 8;

/** Polls (every 50 ms, one query for them all) until every run has ended. */
async function untilAllEnded(pool: Pool, runIds: string[], deadlineMs = 900_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { rows } = await pool.query<{ open: number }>('SELECT count(*)::int AS open FROM cutter_governance.run WHERE run_id = ANY($1) AND status = ANY($2)', [runIds, IN_FLIGHT_STATUSES]);
    const open = rows[0]?.open ?? runIds.length;
    if (open === 0) return;
    if (Date.now() > deadline) throw new Error(`${open} of ${runIds.length} runs had not ended after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const fleetBench: Bench = {
  name: 'fleet',
  async run({ quick, log }): Promise<Figure[]> {
    const dryRuns = quick ? 20 : 200;
    const liveRuns = quick ? 5 : 20;
    const url = scratchUrl('fleet');
    const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-fleet-'));
    const base = config();
    const prefix = `bench-fleet-${process.pid}`;
    const redis = createRedis(base.REDIS_URL);
    const workers: ChildProcess[] = [];
    try {
      await migrate(url, { execRole: base.CUTTER_EXEC_ROLE });
      const pool = createPool(url, { max: ENQUEUERS + 2 });
      try {
        await seedCorpora(pool, 'dry', dryRuns);
        await seedCorpora(pool, 'live', liveRuns);
        const { env, cfg, sovereign } = await benchLiveSettings(dir, { url, prefix });
        for (let i = 0; i < WORKER_PROCESSES; i += 1) workers.push(await startWorker(env));

        /** Enqueues n runs at once; a live run is approved as soon as it pauses and the switch is free. */
        const fleetOf = async (mode: RunMode, n: number) => {
          const snapshots = writeSnapshots(dir, mode, n);
          const { seconds, result: runIds } = await timed(async () => {
            // As many enqueues at a time as the pool has connections: 200 at once would queue in the pool past its connect timeout.
            const ids: string[] = [];
            let next = 0;
            await Promise.all(
              Array.from({ length: ENQUEUERS }, async () => {
                for (let r = next++; r < n; r = next++) {
                  const snapshotPath = snapshots[r] ?? '';
                  ids[r] = (await enqueueRun({ pool, redis, prefix }, { target: targetName(mode, r + 1), snapshotPath, mode, operator: 'bench', approvalWindowS: 3600 })).runId;
                }
              }),
            );
            const ended = untilAllEnded(pool, ids);
            ended.catch(() => undefined); // awaited below; a failed approval must not leave it unhandled
            if (mode === 'live') {
              for (const runId of ids) {
                const paused = await untilStatus(pool, runId, ['awaiting_approval', ...ENDED], 900_000);
                if (paused !== 'awaiting_approval') continue; // ended before its approval: judged with the others below
                await untilSwitchFree(pool);
                await sovereign.approve({ cfg, pool, redis }, runId);
              }
            }
            await ended;
            return ids;
          });
          const { passed, lost, waitsMs, seen } = await outcomesOf(pool, runIds);
          if (passed !== n || lost !== 0) throw new Error(`fleet: ${passed} of ${n} ${mode} runs passed, ${lost} lost (${seen})`);
          const perMin = (n / seconds) * 60;
          const wait = summary(waitsMs);
          const phases = await phaseMedians(pool, runIds);
          log(`phase medians: ${phases}`);
          log(`${n} ${mode} runs on ${WORKER_PROCESSES} worker processes: ${seconds.toFixed(1)} s, ${perMin.toFixed(1)} runs/min, queue wait median ${(wait.median / 1000).toFixed(2)} s, p95 ${(wait.p95 / 1000).toFixed(2)} s`);
          return { n, seconds, perMin, passed, lost, wait, phases };
        };
        const waitText = (w: { median: number; p95: number }) => `queue wait p95 ${(w.p95 / 1000).toFixed(2)} s (median ${(w.median / 1000).toFixed(2)} s)`;

        const dry = await fleetOf('dry', dryRuns);
        const live = await fleetOf('live', liveRuns);
        return [
          {
            name: `fleet: ${dry.n} concurrent dry runs on distinct corpora, ${WORKER_PROCESSES} worker processes`,
            value: `all ${dry.n} PASS, ${dry.lost} lost, in ${dry.seconds.toFixed(1)} s = ${dry.perMin.toFixed(1)} runs/min; ${waitText(dry.wait)}`,
            floor: '—',
            ratio: null,
            goal: 'all succeed, none lost; runs/min and p95 queue wait reported',
            met: dry.passed === dry.n && dry.lost === 0,
            notes:
              `Each dry run (${PLAN_UNITS}-unit plan on its own ${UNITS_PER_CORPUS}-unit corpus) takes its own pg_dump | gpg backup of the whole ` +
              `database, and its proof reads the database's record of writes to its corpus; ${WORKER_PROCESSES} \`cutter worker\` processes, 4 jobs at a time per phase each, on the same 2-core machine as Postgres and Redis. ` +
              'All runs are enqueued at once, so the queue wait is mostly the wait behind the runs ahead: it is the time from the run\'s enqueue to its precheck starting. ' +
              `Phase medians: ${dry.phases}.`,
          },
          {
            name: `fleet: ${live.n} concurrent live runs on distinct corpora, ${WORKER_PROCESSES} worker processes`,
            value: `all ${live.n} PASS, ${live.lost} lost, in ${live.seconds.toFixed(1)} s = ${live.perMin.toFixed(1)} runs/min; ${waitText(live.wait)}`,
            floor: '—',
            ratio: null,
            goal: 'all succeed, none lost; runs/min reported',
            met: live.passed === live.n && live.lost === 0,
            notes:
              `Each live run (${PLAN_UNITS}-unit plan on its own ${UNITS_PER_CORPUS}-unit corpus, the same workers as the dry row) is approved as soon as it ` +
              'pauses at SG_1: SG_1 + EXEC signed by a local sovereign key and stored through the real submit path (validation, storage, tally, gate release). ' +
              'The kill switch is on for one run at a time, from its EXEC grant until its execute commits, so each approval waits for the previous ' +
              "run's execute and the runs' backup (pg_dump | gpg of the whole database) and execute go one after another; precheck, discover, cutplan " +
              'and verify overlap, and each verify proves its own corpus while other runs cut theirs.',
          },
        ];
      } finally {
        await pool.end();
      }
    } finally {
      for (const w of workers) await stopWorker(w);
      await obliterateQueues(redis, prefix, PHASES);
      redis.disconnect();
      await dropScratch(url);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
