import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowProducer, Queue, Worker, type FlowJob } from 'bullmq';
import { pino } from 'pino';
import { config } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool } from '../../shared/db/pool.js';
import { demoBody, demoKey } from '../../shared/demo/corpus.js';
import { registerDemoWorkTarget, seedDemo } from '../../shared/demo/seed.js';
import { createRedis } from '../../shared/redis.js';
import { getRun } from '../../shared/runs/store.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { startFleet } from '../../workers/fleet.js';
import { timed, type Bench } from '../harness.js';
import { benchBackupKey, phaseSeconds } from '../support/live-run.js';
import { SAME_SETTINGS_PIPELINE, shellPipeline } from '../support/shell-pipeline.js';
import { dropScratch, scratchUrl } from './seed.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Polls a condition every 5 ms (both sides of the comparison wait the same way). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 5));
}

/**
 * A dry run of a 10-unit plan end to end (all eight phases' workers in this
 * process: precheck with its backup selftest, grant probe, discover, cutplan,
 * backup, rehearsal, verify) beside the bare hand path of what it must do:
 * the backup as a shell pipeline of the same database plus a bare BullMQ
 * flow of 8 no-op jobs, both measured in the same run.
 */
export const dryRunBench: Bench = {
  name: 'dry-run',
  async run({ quick, log }) {
    const rounds = quick ? 3 : 7;
    const url = scratchUrl('dryrun');
    const dir = mkdtempSync(join(tmpdir(), 'cutter-bench-dry-'));
    const base = config();
    const prefix = `bench-dry-${process.pid}`;
    const redis = createRedis(base.REDIS_URL);
    try {
      await migrate(url, { execRole: base.CUTTER_EXEC_ROLE });
      const pool = createPool(url);
      await seedDemo(pool, 'bench', { sovereignDir: join(dir, 'demo-sovereign'), execRole: base.CUTTER_EXEC_ROLE });
      await registerDemoWorkTarget(pool, 'bench');
      const snapshot = join(dir, 'ten.ndjson');
      const lines = Array.from({ length: 10 }, (_, i) => {
        const key = demoKey('ICX-WORK', i + 1);
        return JSON.stringify({ key, state: 'enacted', body: demoBody(key, 1) });
      });
      writeFileSync(snapshot, `${lines.join('\n')}\n`);
      const { fpr, gnupgHome, workersHome } = await benchBackupKey(dir);
      const backupDir = join(dir, 'backups');
      mkdirSync(backupDir);
      const cfg = {
        ...base,
        DATABASE_URL: url,
        CUTTER_QUEUE_PREFIX: prefix,
        BACKUP_GPG_FPR: fpr,
        GNUPGHOME: workersHome,
        BACKUP_DIR: backupDir,
      };
      const fleet = await startFleet({ cfg, log: pino({ level: 'silent' }) });
      const cutter: number[] = [];
      const phases: Record<string, number>[] = [];
      try {
        for (let i = 0; i < rounds; i += 1) {
          const { seconds } = await timed(async () => {
            const { runId } = await enqueueRun(
              { pool, redis, prefix },
              { target: 'icx-work', snapshotPath: snapshot, mode: 'dry', operator: 'bench', approvalWindowS: 3600 },
            );
            await until(async () => ['succeeded', 'failed'].includes((await getRun(pool, runId))?.status ?? ''));
            const run = await getRun(pool, runId);
            if (run?.verdict !== 'PASS') throw new Error(`bench dry run ${runId} ended ${run?.status ?? '?'}: ${run?.error_message ?? ''}`);
            phases.push(await phaseSeconds(pool, runId));
          });
          cutter.push(seconds);
        }
      } finally {
        await fleet.close();
        await pool.end();
      }
      const floor = await bareFlow(redis, `${prefix}-floor`, rounds);
      const backupAlone = await bareBackup(url, cfg.BACKUP_GPG_FPR, gnupgHome, join(dir, 'bare.pgdump.gpg'), rounds);
      const c = median(cutter);
      const f = median(floor);
      const b = median(backupAlone);
      const composition = gapComposition(phases, c, b, f);
      log(`dry run median ${(c * 1000).toFixed(0)} ms, bare backup ${(b * 1000).toFixed(0)} ms + bare flow ${(f * 1000).toFixed(1)} ms; ${composition}`);
      return [
        {
          name: 'dry run of a 10-unit plan, end to end (median)',
          value: `${(c * 1000).toFixed(0)} ms`,
          floor: `${((b + f) * 1000).toFixed(0)} ms (bare backup pipeline of the same database ${(b * 1000).toFixed(0)} ms + bare 8-job BullMQ flow ${(f * 1000).toFixed(1)} ms, medians)`,
          ratio: c / (b + f),
          goal: '≤ 2×',
          met: c / (b + f) <= 2,
          notes:
            `cutter = enqueue → the run ended with verdict PASS, ${rounds} rounds, all eight phases' workers in this process. floor = the ` +
            `bare hand path of what a dry run must do, both medians of ${rounds} rounds in the same bench run: the backup DESIGN §1 has a dry ` +
            `run take and prove ("same (proves it)") as a shell pipeline, \`pg_dump -Fc --compress=1 | gpg --compress-algo none --encrypt ` +
            `-r FPR > file\` of the dry run's database, the demo corpus (cutter's own compression settings, after one untimed pass), plus 8 empty jobs moved ` +
            `through a BullMQ flow. Beyond them a dry run verifies its backup and fingerprints every table for its manifest, runs the backup selftest in precheck, probes the grant ` +
            `matrix live and stages, plans and rehearses in PostgreSQL. Where the time goes, from the runs' own phase rows: ${composition}.`,
        },
      ];
    } finally {
      redis.disconnect();
      await dropScratch(url);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** Times the bare shell pipeline of the dry run's backup (half the dry-run figure's floor), one untimed pass first. */
async function bareBackup(url: string, fpr: string, home: string, file: string, rounds: number): Promise<number[]> {
  await shellPipeline(SAME_SETTINGS_PIPELINE, url, fpr, home, file);
  const times: number[] = [];
  for (let r = 0; r < rounds; r += 1) times.push((await timed(() => shellPipeline(SAME_SETTINGS_PIPELINE, url, fpr, home, file))).seconds);
  return times;
}

/**
 * Where a dry run's time goes: each phase's median duration (run_phase
 * started → finished, the phase's own work), its backup beside the bare
 * pipeline, and the rest, which is the hand-offs between the phases' jobs
 * and the bench's 5 ms status polling.
 */
function gapComposition(phases: Record<string, number>[], total: number, pipeline: number, flow: number): string {
  const names = [...new Set(phases.flatMap((p) => Object.keys(p)))];
  const medians = names.map((n) => ({ n, s: median(phases.map((p) => p[n] ?? 0)) })).sort((a, b) => b.s - a.s);
  const inPhases = medians.reduce((sum, m) => sum + m.s, 0);
  const backup = medians.find((m) => m.n === 'backup')?.s ?? Number.NaN;
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  return (
    `${medians.map((m) => `${m.n} ${ms(m.s)}`).join(', ')} (phases together ${ms(inPhases)}; the backup phase ${(backup / pipeline).toFixed(2)}× ` +
    `the bare pipeline's ${ms(pipeline)}, the other phases ${ms(inPhases - backup)}); the rest, ${ms(Math.max(0, total - inPhases))}, is the ` +
    `hand-offs between jobs (the bare flow's whole run: ${ms(flow)}) and the 5 ms status polling`
  );
}

/** Times a FlowProducer tree of 8 nested no-op jobs until its root completes. */
async function bareFlow(redis: ReturnType<typeof createRedis>, prefix: string, rounds: number): Promise<number[]> {
  const names = Array.from({ length: 8 }, (_, i) => `floor-${i}`);
  const connections = names.map(() => createRedis(config().REDIS_URL, 'worker'));
  const workers = names.map((n, i) => new Worker(n, () => Promise.resolve(null), { connection: connections[i] ?? redis, prefix }));
  const producer = new FlowProducer({ connection: redis, prefix });
  const root = new Queue(names[names.length - 1] ?? 'floor-7', { connection: redis, prefix });
  const times: number[] = [];
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    for (let r = 0; r < rounds; r += 1) {
      let tree: FlowJob | undefined;
      for (const n of names) tree = { name: n, queueName: n, prefix, data: {}, opts: { failParentOnFailure: true }, ...(tree ? { children: [tree] } : {}) };
      if (!tree) throw new Error('empty flow');
      const flow = tree;
      const { seconds } = await timed(async () => {
        const added = await producer.add(flow);
        const id = added.job.id ?? '';
        await until(async () => (await root.getJobState(id)) === 'completed');
      });
      times.push(seconds);
    }
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    for (const c of connections) c.disconnect();
    await producer.close();
    await root.obliterate({ force: true }).catch(() => undefined);
    await root.close();
  }
  return times;
}
