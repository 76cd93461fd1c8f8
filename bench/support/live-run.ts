import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { parseConfig, type Config } from '../../shared/config.js';
import { ensureDemoGpgKey } from '../../shared/demo/gpg-key.js';
import { createRedis, type RedisClient } from '../../shared/redis.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { localSovereign, type LocalSovereign } from '../../shared/demo/sovereign.js';
import { startFleet } from '../../workers/fleet.js';

const execFileAsync = promisify(execFile);

/** A fresh sovereign per bench directory (the demo's signer, with its key made in dir). */
export function benchSovereign(dir: string): LocalSovereign {
  return localSovereign(join(dir, 'sovereign'));
}

/**
 * The settings of a bench's live runs in dir: a backup key and directory of
 * their own, a sovereign of their own (quorum 1), a volatile Redis allowed,
 * silent logs. `env` is for worker processes, `cfg` for in-process ones.
 */
export async function benchLiveSettings(
  dir: string,
  args: { url: string; prefix: string },
): Promise<{ env: NodeJS.ProcessEnv; cfg: Config; sovereign: LocalSovereign; gnupgHome: string; fpr: string }> {
  const { fpr, gnupgHome, workersHome } = await benchBackupKey(dir);
  const backupDir = join(dir, 'backups');
  mkdirSync(backupDir);
  const sovereign = benchSovereign(dir);
  const env = {
    ...process.env,
    DATABASE_URL: args.url,
    CUTTER_QUEUE_PREFIX: args.prefix,
    BACKUP_GPG_FPR: fpr,
    GNUPGHOME: workersHome,
    BACKUP_DIR: backupDir,
    SOVEREIGN_KEYS: sovereign.keysDir,
    SOVEREIGN_QUORUM: '1',
    CUTTER_ALLOW_VOLATILE_REDIS: 'true',
    LOG_LEVEL: 'silent',
  };
  return { env, cfg: parseConfig(env), sovereign, gnupgHome, fpr };
}

/**
 * A bench's backup key in dir: `gnupgHome` holds the whole key (for a bare
 * pipeline beside the run), `workersHome` its public half only, which is all
 * the workers get, as docs/first-live-run.md deploys them (the secret key
 * stays where restores are done, so the backup phase checks the file without
 * decrypting it).
 */
export async function benchBackupKey(dir: string): Promise<{ fpr: string; gnupgHome: string; workersHome: string }> {
  const gnupgHome = join(dir, 'gnupg');
  const fpr = await ensureDemoGpgKey(gnupgHome);
  const workersHome = join(dir, 'gnupg-public');
  await copyPublicKey(gnupgHome, workersHome, fpr);
  return { fpr, gnupgHome, workersHome };
}

/** A keyring at `to` holding only the public half of key fpr from `from`. */
async function copyPublicKey(from: string, to: string, fpr: string): Promise<void> {
  mkdirSync(to, { mode: 0o700 });
  const exported = await execFileAsync('gpg', ['--batch', '--homedir', from, '--export', fpr], { encoding: 'buffer', maxBuffer: 1 << 20 });
  const child = execFile('gpg', ['--batch', '--homedir', to, '--import']);
  const done = new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`gpg --import exited ${String(code)}`)))));
  child.stdin?.end(exported.stdout);
  await done;
}

/** What a bench needs to drive live runs on one database: its pool, config, Redis, sovereign and backup keyring. */
export interface LiveFleet {
  pool: Pool;
  cfg: Config;
  redis: RedisClient;
  sovereign: LocalSovereign;
  prefix: string;
  /** The backup key (cfg.BACKUP_GPG_FPR) and the GNUPGHOME holding it, for a bare pipeline beside the run. */
  backupKey: { fpr: string; home: string };
}

/** Runs fn with an in-process fleet serving live runs on url under prefix (benchLiveSettings in dir), and closes it after. */
export async function withLiveFleet<T>(dir: string, url: string, prefix: string, fn: (live: LiveFleet) => Promise<T>): Promise<T> {
  const { cfg, sovereign, gnupgHome, fpr } = await benchLiveSettings(dir, { url, prefix });
  const redis = createRedis(cfg.REDIS_URL);
  const pool = createPool(url, { max: 4 });
  try {
    const fleet = await startFleet({ cfg, log: pino({ level: 'silent' }) });
    try {
      return await fn({ pool, cfg, redis, sovereign, prefix, backupKey: { fpr, home: gnupgHome } });
    } finally {
      await fleet.close();
    }
  } finally {
    await pool.end();
    redis.disconnect();
  }
}

/** Polls (every 20 ms) until the run reaches one of the given statuses; returns it. */
export async function untilStatus(pool: Pool, runId: string, statuses: string[], deadlineMs = 600_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { rows } = await pool.query<{ status: string }>('SELECT status FROM cutter_governance.run WHERE run_id = $1', [runId]);
    const status = rows[0]?.status ?? '';
    if (statuses.includes(status)) return status;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${status} after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Seconds each phase of a run took, from run_phase (started_at → finished_at). */
export async function phaseSeconds(pool: Pool, runId: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ phase: string; s: number | null }>(
    `SELECT phase, extract(epoch FROM finished_at - started_at)::float8 AS s
       FROM cutter_governance.run_phase WHERE run_id = $1`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.phase, r.s ?? Number.NaN]));
}

/** Removes every job a bench left in these queues under its prefix (benches share the Redis). */
export async function obliterateQueues(redis: RedisClient, prefix: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const q = new Queue(name, { connection: redis, prefix });
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
  }
}
