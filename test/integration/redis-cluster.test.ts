import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import type { Baseline } from '../../shared/jobs/results.js';
import type { Readiness } from '../../shared/readiness/types.js';
import { runCli } from '../support/cli.js';
import { startRedisCluster, type PrivateRedisCluster } from '../support/redis-cluster.js';
import { freePort } from '../support/redis-server.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';
import { approvalFor, postApproval, waitForGate } from '../support/sovereign.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

/**
 * Scale out (issue 29): a user who moves Redis to a cluster. A real 3-master
 * Redis Cluster on loopback (cluster-enabled, joined by redis-cli --cluster
 * create), the `{cutter}` prefix, the phases split between two worker
 * processes, so every run hands its jobs from one process to the other
 * through the cluster. Every master appends and refuses eviction, and
 * volatile Redis is not allowed: precheck must find all of them durable.
 */

// Each phase served by exactly one of the two processes.
const PROCESS_A = ['precheck', 'discover', 'approval-gate', 'execute'];
const PROCESS_B = ['grant-probe', 'cutplan', 'backup', 'verify'];

const ADMIN = { user: 'admin', password: 'cluster-test' };
const AUTH = { authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` };

let cluster: PrivateRedisCluster;
let env: RunEnv;
let board: BoardServer;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  env = await createRunEnv('cluster', { env: { REDIS_URL: cluster.url, CUTTER_QUEUE_PREFIX: '{cutter}', CUTTER_ALLOW_VOLATILE_REDIS: 'false' } });
  for (const phases of [PROCESS_A, PROCESS_B]) workers.push(await startWorkerProcess(env.env, { phases }));
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials: ADMIN, options: { sweepIntervalMs: 60_000 } });
}, 180_000);

afterAll(async () => {
  for (const w of workers) await w.stop();
  await board?.close();
  await env?.close();
  await cluster?.stop();
});

async function unitStates(): Promise<Record<string, number>> {
  const { rows } = await env.db.pool.query<{ state: string; n: number }>(
    `SELECT state, count(*)::int AS n FROM information_unit WHERE corpus = 'ICX-WORK' GROUP BY state ORDER BY state`,
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

async function baselineOf(runId: string): Promise<Baseline> {
  const { rows } = await env.db.pool.query<{ baseline: Baseline }>('SELECT baseline FROM cutter_governance.run WHERE run_id = $1', [runId]);
  const baseline = rows[0]?.baseline;
  if (!baseline) throw new Error(`run ${runId} has no baseline`);
  return baseline;
}

const masters = () => cluster.nodes.map((n) => `127.0.0.1:${n.port}`).sort();

describe('cutter on a 3-node Redis Cluster with workers in two processes', () => {
  it('runs a dry run through `cutter run`, which finds the workers on the cluster, to PASS with nothing changed', async () => {
    const before = await env.corpus();
    const result = await runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry', '--json'], env.env);
    expect(result.code, result.stderr).toBe(0);
    const run = JSON.parse(result.stdout) as { run_id: string; status: string; verdict: string; plan: { unit_count: number } };
    expect(run).toMatchObject({ status: 'succeeded', verdict: 'PASS', plan: { unit_count: 55 } });
    expect(await env.corpus()).toEqual(before);
    // Precheck read every master, not just the one that holds {cutter}'s slot.
    const redis = (await baselineOf(run.run_id)).redis;
    expect(redis.durable).toBe(true);
    expect(redis.nodes?.map((n) => n.node).sort()).toEqual(masters());
  });

  it('runs a live run signed at SG_1 and EXEC through the board to succeeded, the plan applied once', async () => {
    expect(await unitStates()).toEqual({ draft: 98 });
    const runId = await env.enqueue('live');
    const run = await waitForGate(env, runId);
    for (const gate of ['SG_1', 'EXEC'] as const) {
      const answer = await postApproval(board.url, runId, approvalFor(run, gate, env.sovereign.key));
      expect(answer.status, JSON.stringify(answer.json)).toBe(201);
    }
    const ended = await env.waitForEnd(runId, 120_000);
    expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
    expect(ended.verdict).toBe('PASS');
    expect(ended.phases.map((p) => `${p.phase}:${p.state}`)).toEqual([
      'precheck:completed',
      'grant-probe:completed',
      'discover:completed',
      'cutplan:completed',
      'approval-gate:completed',
      'backup:completed',
      'execute:completed',
      'verify:completed',
    ]);
    // The demo snapshot's cut, as on one Redis (approval-live.test.ts).
    expect(await unitStates()).toEqual({ draft: 68, enacted: 40 });
    const { rows } = await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.execution_ledger WHERE run_id = $1', [runId]);
    expect(rows[0]?.n).toBe(1);

    // The board reads the cluster as an admin would: healthy, and Bull Board's queues with the run's jobs.
    expect((await fetch(`${board.url}/healthz`)).status).toBe(200);
    const api = await fetch(`${board.url}/admin/queues/api/queues`, { headers: AUTH });
    expect(api.status).toBe(200);
    const { queues } = (await api.json()) as { queues: { name: string; counts: Record<string, number> }[] };
    // Two runs went through every phase queue; only the live one through the gate.
    expect(Object.fromEntries(queues.map((q) => [q.name, q.counts['completed']]))).toEqual({
      precheck: 2, 'grant-probe': 2, discover: 2, cutplan: 2, 'approval-gate': 1, backup: 2, execute: 2, verify: 2,
    });
  });

  it('stops `cutter worker` at start with CONFIG_INVALID when the prefix is not a hash tag, before connecting anywhere', async () => {
    const result = await runCli(['worker'], { ...env.env, CUTTER_QUEUE_PREFIX: 'cutter' });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([
      "cutter: CUTTER_QUEUE_PREFIX must be a hash tag such as {cutter} when REDIS_URL names a Redis Cluster: every key of every phase queue must hash to one slot, as a run's flow spans the queues [CONFIG_INVALID]",
    ]);
  });

  it('names REDIS_URL, password redacted, when no seed node of the cluster answers, and writes no run', async () => {
    const url = `redis+cluster://cutter:s3cret@127.0.0.1:${await freePort()}`;
    const runs = async () => (await env.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM cutter_governance.run')).rows[0]?.n;
    const before = await runs();
    const result = await runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry'], { ...env.env, REDIS_URL: url });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      `cutter: REDIS_URL ${url.replace('s3cret', '***')}: none of the cluster's seed nodes answered (is the cluster running on those hosts and ports?) [REDIS_UNREACHABLE]`,
    );
    expect(await runs()).toBe(before);
  });

  it('refuses a live run, and readiness reports a blocker, when one master that does not hold {cutter}\'s slot stops appending', async () => {
    const owner = await cluster.ownerOf('{cutter}');
    const other = cluster.nodes.find((n) => `127.0.0.1:${n.port}` !== owner);
    if (!other) throw new Error('no second master');
    const address = `127.0.0.1:${other.port}`;
    const client = cluster.node(other.port);
    try {
      await client.call('CONFIG', 'SET', 'appendonly', 'no');

      const readiness = await runCli(['readiness', '--format', 'json', '--target', 'icx-work'], env.env);
      const report = JSON.parse(readiness.stdout) as Readiness;
      const durability = report.packages.find((p) => p.name === 'Redis durability');
      expect(durability?.runnable).toBe('NO');
      expect(durability?.verified).toContain(`${address}: appendonly=no, maxmemory-policy=noeviction (1 of 3 masters)`);
      expect(report.blockers.filter((b) => b.package === 'Redis durability' && b.blocking)).toHaveLength(1);

      const before = await env.corpus();
      const runId = await env.enqueue('live');
      const ended = await env.waitForEnd(runId);
      expect(ended.status).toBe('failed');
      expect(ended.failed_phase).toBe('precheck');
      expect(ended.error?.code).toBe('PRECHECK_REDIS_VOLATILE');
      expect(ended.error?.message).toContain(`${address}: appendonly=no`);
      expect(await env.corpus()).toEqual(before);
    } finally {
      await client.call('CONFIG', 'SET', 'appendonly', 'yes');
      client.disconnect();
    }
  });
});
