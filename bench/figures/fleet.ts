import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { config, parseConfig, type Config } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { ensureDemoGpgKey } from '../../shared/demo/gpg-key.js';
import { PHASES, type RunMode } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { benchSovereign, obliterateQueues, untilStatus } from '../support/live-run.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * Fleet throughput: n runs enqueued at once, each on its own corpus (the
 * corpus lock would serialise runs on one corpus), served by 2 `cutter
 * worker` child processes of the built CLI. Every run must end succeeded
 * with verdict PASS; each row is runs per minute, first enqueue to last end.
 * One row of dry runs, one of live runs, each approved (SG_1 + EXEC, signed
 * by a local sovereign key) through the real submit path as it pauses.
 */

const UNITS_PER_CORPUS = 100;
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

/** Runs that ended succeeded with verdict PASS, among these. */
async function passedOf(pool: Pool, runIds: string[]): Promise<{ passed: number; seen: string }> {
  const { rows } = await pool.query<{ status: string; verdict: string | null; n: number }>(
    `SELECT status, verdict, count(*)::int AS n FROM cutter_governance.run WHERE run_id = ANY($1) GROUP BY status, verdict`,
    [runIds],
  );
  return { passed: rows.find((v) => v.status === 'succeeded' && v.verdict === 'PASS')?.n ?? 0, seen: JSON.stringify(rows) };
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

const ENDED = ['succeeded', 'failed', 'expired'];

export const fleetBench: Bench = {
  name: 'fleet',
  async run({ quick, log }): Promise<Figure[]> {
    const dryRuns = quick ? 10 : 50;
    const liveRuns = quick ? 5 : 20;
    const url = scratchUrl('fleet');
    const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-fleet-'));
    const base = config();
    const prefix = `bench-fleet-${process.pid}`;
    const redis = createRedis(base.REDIS_URL);
    const workers: ChildProcess[] = [];
    try {
      await migrate(url, { execRole: base.CUTTER_EXEC_ROLE });
      const pool = createPool(url, { max: 8 });
      try {
        await seedCorpora(pool, 'dry', dryRuns);
        await seedCorpora(pool, 'live', liveRuns);
        const gnupgHome = join(dir, 'gnupg');
        const backupDir = join(dir, 'backups');
        mkdirSync(backupDir);
        const sovereign = benchSovereign(dir);
        const env = {
          ...process.env,
          DATABASE_URL: url,
          CUTTER_QUEUE_PREFIX: prefix,
          BACKUP_GPG_FPR: await ensureDemoGpgKey(gnupgHome),
          GNUPGHOME: gnupgHome,
          BACKUP_DIR: backupDir,
          SOVEREIGN_KEYS: sovereign.keysDir,
          SOVEREIGN_QUORUM: '1',
          CUTTER_ALLOW_VOLATILE_REDIS: 'true',
          LOG_LEVEL: 'silent',
        };
        const cfg: Config = parseConfig(env);
        for (let i = 0; i < 2; i += 1) workers.push(await startWorker(env));

        /** Enqueues n runs at once; a live run is approved as soon as it pauses and the switch is free. */
        const fleetOf = async (mode: RunMode, n: number) => {
          const snapshots = writeSnapshots(dir, mode, n);
          const { seconds, result: runIds } = await timed(async () => {
            const ids = (
              await Promise.all(
                snapshots.map((snapshotPath, r) =>
                  enqueueRun({ pool, redis, prefix }, { target: targetName(mode, r + 1), snapshotPath, mode, operator: 'bench', approvalWindowS: 3600 }),
                ),
              )
            ).map((r) => r.runId);
            const ended = Promise.all(ids.map((runId) => untilStatus(pool, runId, ENDED, 900_000)));
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
          const { passed, seen } = await passedOf(pool, runIds);
          if (passed !== n) throw new Error(`fleet: ${passed} of ${n} ${mode} runs passed (${seen})`);
          const perMin = (n / seconds) * 60;
          log(`${n} ${mode} runs on 2 worker processes: ${seconds.toFixed(1)} s, ${perMin.toFixed(1)} runs/min`);
          return { n, seconds, perMin, passed };
        };

        const dry = await fleetOf('dry', dryRuns);
        const live = await fleetOf('live', liveRuns);
        return [
          {
            name: `fleet: ${dry.n} concurrent dry runs on distinct corpora, 2 worker processes`,
            value: `all ${dry.n} PASS in ${dry.seconds.toFixed(1)} s = ${dry.perMin.toFixed(1)} runs/min`,
            floor: '—',
            ratio: null,
            goal: 'all complete; runs/min reported',
            met: dry.passed === dry.n,
            notes:
              `Each dry run (${PLAN_UNITS}-unit plan on its own ${UNITS_PER_CORPUS}-unit corpus) takes its own pg_dump | gpg backup of the whole ` +
              'database and fingerprints its corpus before and after; 2 `cutter worker` processes, 4 jobs at a time per phase each, on the same 2-core machine as Postgres and Redis.',
          },
          {
            name: `fleet: ${live.n} concurrent live runs on distinct corpora, 2 worker processes`,
            value: `all ${live.n} PASS in ${live.seconds.toFixed(1)} s = ${live.perMin.toFixed(1)} runs/min`,
            floor: '—',
            ratio: null,
            goal: 'all complete; runs/min reported',
            met: live.passed === live.n,
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
