import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { config } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { ensureDemoGpgKey } from '../../shared/demo/gpg-key.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { obliterateQueues, untilStatus } from '../support/live-run.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * Fleet throughput: n dry runs enqueued at once, each on its own corpus (the
 * corpus lock would serialise runs on one corpus), served by 2 `cutter
 * worker` child processes of the built CLI. Every run must end succeeded
 * with verdict PASS; the figure is runs per minute, first enqueue to last end.
 */

const UNITS_PER_CORPUS = 100;
const PLAN_UNITS = 10;
const CLI = fileURLToPath(new URL('../../producers/cli/main.js', import.meta.url));

const corpusName = (i: number) => `FLEET-${String(i).padStart(3, '0')}`;
const targetName = (i: number) => `fleet-${String(i).padStart(3, '0')}`;
const body = (k: string) => `${k}: fleet benchmark unit, text of version 1.`;

/** n corpora of draft units and one target each, built server-side. */
async function seedCorpora(pool: Pool, n: number): Promise<void> {
  await pool.query(
    `INSERT INTO public.information_unit (corpus, key, state, current_version)
     SELECT 'FLEET-' || lpad(c::text, 3, '0'), 'FLEET-' || lpad(c::text, 3, '0') || '/' || lpad(g::text, 4, '0'), 'draft', 1
       FROM generate_series(1, $1::int) c, generate_series(1, $2::int) g`,
    [n, UNITS_PER_CORPUS],
  );
  await pool.query(
    `INSERT INTO public.unit_version (unit_id, version, body, body_sha256)
     SELECT u.id, 1, b.body, encode(sha256(convert_to(b.body, 'UTF8')), 'hex')
       FROM public.information_unit u
      CROSS JOIN LATERAL (SELECT u.key || ': fleet benchmark unit, text of version 1.' AS body) b
      WHERE u.corpus LIKE 'FLEET-%'`,
  );
  await pool.query(
    `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by, notes)
     SELECT 'fleet-' || lpad(c::text, 3, '0'), 'FLEET-' || lpad(c::text, 3, '0'), 'bench', false, $2, ARRAY['draft->enacted'], 'bench', 'fleet benchmark'
       FROM generate_series(1, $1::int) c`,
    [n, PLAN_UNITS],
  );
  await pool.query('ANALYZE public.information_unit, public.unit_version');
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

export const fleetBench: Bench = {
  name: 'fleet',
  async run({ quick, log }): Promise<Figure[]> {
    const runs = quick ? 10 : 50;
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
        await seedCorpora(pool, runs);
        const snapshots = Array.from({ length: runs }, (_, r) => {
          const lines = Array.from({ length: PLAN_UNITS }, (_, u) => {
            const k = `${corpusName(r + 1)}/${String(u + 1).padStart(4, '0')}`;
            return JSON.stringify({ key: k, state: 'enacted', body: body(k) });
          });
          const file = join(dir, `fleet-${r + 1}.ndjson`);
          writeFileSync(file, `${lines.join('\n')}\n`);
          return file;
        });
        const gnupgHome = join(dir, 'gnupg');
        const backupDir = join(dir, 'backups');
        mkdirSync(backupDir);
        const env = {
          ...process.env,
          DATABASE_URL: url,
          CUTTER_QUEUE_PREFIX: prefix,
          BACKUP_GPG_FPR: await ensureDemoGpgKey(gnupgHome),
          GNUPGHOME: gnupgHome,
          BACKUP_DIR: backupDir,
          LOG_LEVEL: 'silent',
        };
        for (let i = 0; i < 2; i += 1) workers.push(await startWorker(env));
        const { seconds, result } = await timed(async () => {
          const ids = await Promise.all(
            snapshots.map((snapshotPath, r) =>
              enqueueRun({ pool, redis, prefix }, { target: targetName(r + 1), snapshotPath, mode: 'dry', operator: 'bench', approvalWindowS: 3600 }),
            ),
          );
          return Promise.all(ids.map(({ runId }) => untilStatus(pool, runId, ['succeeded', 'failed', 'expired'], 900_000)));
        });
        const verdicts = await pool.query<{ status: string; verdict: string | null; n: number }>(
          `SELECT status, verdict, count(*)::int AS n FROM cutter_governance.run GROUP BY status, verdict`,
        );
        const passed = verdicts.rows.find((v) => v.status === 'succeeded' && v.verdict === 'PASS')?.n ?? 0;
        if (passed !== runs) throw new Error(`fleet: ${passed} of ${runs} dry runs passed (${JSON.stringify(verdicts.rows)}; ${result.join(',')})`);
        const perMin = (runs / seconds) * 60;
        log(`${runs} dry runs on 2 worker processes: ${seconds.toFixed(1)} s, ${perMin.toFixed(1)} runs/min`);
        return [
          {
            name: `fleet: ${runs} concurrent dry runs on distinct corpora, 2 worker processes`,
            value: `all ${runs} PASS in ${seconds.toFixed(1)} s = ${perMin.toFixed(1)} runs/min`,
            floor: '—',
            ratio: null,
            goal: 'all complete; runs/min reported',
            met: passed === runs,
            notes:
              `Each dry run (${PLAN_UNITS}-unit plan on its own ${UNITS_PER_CORPUS}-unit corpus) takes its own pg_dump | gpg backup of the whole ` +
              'database and fingerprints before and after; 2 `cutter worker` processes, 4 jobs at a time per phase each, on the same 2-core machine as Postgres and Redis.',
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
