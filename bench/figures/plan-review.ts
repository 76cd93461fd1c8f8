import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startBoardServer } from '../../board/server.js';
import { config, parseConfig } from '../../shared/config.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { streamedPlanSha256 } from '../../shared/plan/hash.js';
import { API_PAGE } from '../../board/routes/plan.js';
import { timed, type Bench, type Figure } from '../harness.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * Plan review at scale (docs/plan-review.md): `cutter plan show --format
 * ndjson` of a 1,000,000-item plan beside a bare `COPY (SELECT …) TO
 * STDOUT` of the same rows through psql, each a fresh process whose output
 * the bench reads and counts; and the first page of GET /runs/:id/plan
 * beside the bare keyset query of the same page on an open connection.
 */

const CLI = fileURLToPath(new URL('../../producers/cli/main.js', import.meta.url));
const RUN_ID = 'bench-review-run-1';
const CORPUS = 'BENCH';
const RSS_BUDGET_MIB = 256;

/** The plan's rows, written server-side: every op, bodies named by hash (plan show reads no body). */
async function seedPlan(pool: Pool, n: number): Promise<string> {
  await pool.query(`INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, registered_by)
                    VALUES ('bench', $1, 'bench', false, $2, ARRAY['new->draft', 'draft->enacted', 'revise'], 'bench')`, [CORPUS, n]);
  await pool.query(`INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, status) VALUES ($1, 'bench', $2, 'live', 'bench', 'awaiting_approval')`, [RUN_ID, CORPUS]);
  await pool.query(`INSERT INTO cutter_governance.cut_change_set (run_id, target, corpus, plan_sha256, unit_count, by_op, by_transition)
                    VALUES ($1, 'bench', $2, $3, $4, '{}', '{}')`, [RUN_ID, CORPUS, '0'.repeat(64), n]);
  await pool.query(
    `INSERT INTO cutter_governance.cut_change_item (run_id, key, op, transition, unit_id, pre_state, pre_version, pre_body_sha256, post_state, post_version, post_body_sha256)
     SELECT $1, $2 || '/' || lpad(g::text, 7, '0'), o.op, o.transition, CASE WHEN o.op = 'create' THEN NULL ELSE g END,
            o.pre_state, CASE WHEN o.op = 'create' THEN NULL ELSE 1 END,
            CASE WHEN o.op = 'create' THEN NULL ELSE encode(sha256(convert_to('before ' || g, 'UTF8')), 'hex') END,
            o.post_state, CASE WHEN o.op IN ('create', 'transition') THEN 1 ELSE 2 END,
            encode(sha256(convert_to(CASE WHEN o.op = 'transition' THEN 'before ' ELSE 'after ' END || g, 'UTF8')), 'hex')
       FROM generate_series(1, $3::int) g
      CROSS JOIN LATERAL (SELECT * FROM (VALUES
        (0, 'create', 'new->draft', NULL, 'draft'), (1, 'revise', NULL, 'draft', 'draft'),
        (2, 'transition', 'draft->enacted', 'draft', 'enacted'), (3, 'revise+transition', 'draft->enacted', 'draft', 'enacted')
      ) v(k, op, transition, pre_state, post_state) WHERE v.k = g % 4) o`,
    [RUN_ID, CORPUS, n],
  );
  await pool.query('ANALYZE cutter_governance.cut_change_item');
  const client = await pool.connect();
  try {
    const sha = await streamedPlanSha256(client, RUN_ID);
    await client.query('UPDATE cutter_governance.cut_change_set SET plan_sha256 = $2 WHERE run_id = $1', [RUN_ID, sha]);
    return sha;
  } finally {
    client.release();
  }
}

interface Streamed {
  seconds: number;
  lines: number;
  bytes: number;
  maxRssKib: number;
}

/** Runs a command under /usr/bin/time, reading and counting its stdout as it comes. */
function streamOf(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss_kib=%M', command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const rss = /maxrss_kib=(\d+)/.exec(stderr);
      if (code !== 0 || !rss) reject(new Error(`${command} exited ${String(code)}: ${stderr.slice(-400)}`));
      else resolve({ seconds, lines, bytes, maxRssKib: Number(rss[1]) });
    });
  });
}

/** The floor's statement: the same rows, the same order, COPY's own text form. */
const FLOOR_COPY = `COPY (SELECT key, op, transition, pre_state, post_state, pre_version, post_version, pre_body_sha256, post_body_sha256
  FROM cutter_governance.cut_change_item WHERE run_id = '${RUN_ID}' ORDER BY key COLLATE "C") TO STDOUT`;

/** The bare keyset query of the API's first page: the same columns and rows, on a connection already open. */
const FLOOR_PAGE = `SELECT key, op, transition, pre_state, post_state, pre_version, post_version, pre_body_sha256, post_body_sha256
  FROM cutter_governance.cut_change_item WHERE run_id = $1 ORDER BY key COLLATE "C" LIMIT $2`;

function get(agent: http.Agent, url: string, status = 200): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => (res.statusCode === status ? resolve(body) : reject(new Error(`HTTP ${String(res.statusCode)}: ${body}`))));
      })
      .on('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)] ?? NaN;

/** The first page over HTTP and the bare query, alternated so both see the same machine; milliseconds. */
async function firstPage(pool: Pool, url: string, rounds: number): Promise<{ http: number[]; floor: number[]; roundTrip: number[]; items: number }> {
  const cfg = parseConfig({ ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' });
  const board = await startBoardServer({ cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials: { user: 'bench', password: 'bench-only' }, options: { sweepIntervalMs: 600_000 } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const client = await pool.connect();
  try {
    const pageUrl = `${board.url}/runs/${RUN_ID}/plan`;
    const first = JSON.parse(await get(agent, pageUrl)) as { items: { key: string }[] };
    const bare = await client.query<{ key: string }>(FLOOR_PAGE, [RUN_ID, API_PAGE.limit]);
    if (JSON.stringify(first.items.map((i) => i.key)) !== JSON.stringify(bare.rows.map((r) => r.key))) throw new Error('the API page and the bare query differ');
    const httpMs: number[] = [];
    const floorMs: number[] = [];
    const roundTripMs: number[] = [];
    for (let i = 0; i < rounds; i += 1) {
      httpMs.push((await timed(() => get(agent, pageUrl))).seconds * 1000);
      floorMs.push((await timed(() => client.query(FLOOR_PAGE, [RUN_ID, API_PAGE.limit]))).seconds * 1000);
      // What any answer of the board costs with no query at all: its JSON 404.
      roundTripMs.push((await timed(() => get(agent, `${board.url}/no-such-route`, 404))).seconds * 1000);
    }
    return { http: httpMs, floor: floorMs, roundTrip: roundTripMs, items: first.items.length };
  } finally {
    client.release();
    agent.destroy();
    await board.close();
  }
}

export const planReviewBench: Bench = {
  name: 'plan-review',
  async run({ quick, log }) {
    const n = quick ? 100_000 : 1_000_000;
    const url = scratchUrl('review');
    try {
      await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
      const pool = createPool(url, { max: 2 });
      try {
        const setup = await timed(() => seedPlan(pool, n));
        log(`plan of ${n} items ready in ${setup.seconds.toFixed(1)} s (plan_sha256 ${setup.result.slice(0, 12)}…)`);
        const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' };
        let floor: Streamed | undefined;
        let show: Streamed | undefined;
        // Best of three each, alternated: the machine is shared.
        for (let i = 0; i < 3; i += 1) {
          const f = await streamOf('psql', ['-X', '-q', '-d', url, '-c', FLOOR_COPY], env);
          const s = await streamOf(process.execPath, [CLI, 'plan', 'show', RUN_ID, '--format', 'ndjson'], env);
          if (f.lines !== n || s.lines !== n + 1) throw new Error(`expected ${n} rows: the floor printed ${f.lines} lines, plan show ${s.lines}`);
          if (!floor || f.seconds < floor.seconds) floor = f;
          if (!show || s.seconds < show.seconds) show = s;
        }
        if (!floor || !show) throw new Error('nothing measured');
        log(`${n}: COPY ${floor.seconds.toFixed(2)} s, plan show ${show.seconds.toFixed(2)} s, ${(show.maxRssKib / 1024).toFixed(0)} MiB`);
        const page = await firstPage(pool, url, quick ? 100 : 300);
        log(`first page: HTTP ${median(page.http).toFixed(2)} ms, bare query ${median(page.floor).toFixed(2)} ms`);
        return figures(n, floor, show, page);
      } finally {
        await pool.end();
      }
    } finally {
      await dropScratch(url);
    }
  },
};

function figures(n: number, floor: Streamed, show: Streamed, page: { http: number[]; floor: number[]; roundTrip: number[]; items: number }): Figure[] {
  const count = n.toLocaleString('en-US');
  const rate = (s: number) => `${Math.round(n / s / 1000)}k items/s`;
  const ratio = show.seconds / floor.seconds;
  const pageRatio = median(page.http) / median(page.floor);
  return [
    {
      name: `cutter plan show --format ndjson, ${count}-item plan`,
      value: `${show.seconds.toFixed(2)} s, ${rate(show.seconds)} (${(show.bytes / 2 ** 20).toFixed(0)} MiB)`,
      floor: `${floor.seconds.toFixed(2)} s, ${rate(floor.seconds)} (psql COPY (SELECT …) TO STDOUT, ${(floor.bytes / 2 ** 20).toFixed(0)} MiB)`,
      ratio,
      goal: 'throughput ≥ 0.5× floor (ratio ≤ 2)',
      met: ratio <= 2,
      notes:
        'both are fresh processes streaming the same rows in byte order of key to a pipe the bench reads, best of 3 alternated; ' +
        'plan show prints the JSON export (header, then one JSON object a line built by PostgreSQL inside its COPY), the floor COPY\'s tab-separated text',
    },
    {
      name: `peak RSS, cutter plan show --format ndjson of ${count} items`,
      value: `${(show.maxRssKib / 1024).toFixed(0)} MiB`,
      floor: `${(floor.maxRssKib / 1024).toFixed(0)} MiB (psql)`,
      ratio: show.maxRssKib / floor.maxRssKib,
      goal: `< ${RSS_BUDGET_MIB} MiB`,
      met: show.maxRssKib / 1024 < RSS_BUDGET_MIB,
    },
    {
      name: `GET /runs/:id/plan, first page (${page.items} items) of a ${count}-item plan`,
      value: `${median(page.http).toFixed(2)} ms median (p95 ${p95(page.http).toFixed(2)} ms)`,
      floor: `${median(page.floor).toFixed(2)} ms median (p95 ${p95(page.floor).toFixed(2)} ms), the bare keyset query on an open connection`,
      ratio: pageRatio,
      goal: 'ratio ≤ 2',
      met: pageRatio <= 2,
      notes:
        `${page.http.length} requests over one keep-alive connection, alternated with as many bare queries and as many requests the board ` +
        `answers with no query at all (a JSON 404: ${median(page.roundTrip).toFixed(2)} ms median). The page is one keyset query on the ` +
        'index of migration 024; what it costs beyond the bare query is about that empty round trip through the board.',
    },
  ];
}
