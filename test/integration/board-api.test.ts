import { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { PHASES } from '../../shared/jobs/catalog.js';
import { insertRun } from '../../shared/runs/store.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';

/**
 * The board as an API client meets it: Bull Board locked and read-only,
 * run pages in JSON and HTML, metrics in Prometheus text. One completed
 * dry run of the demo snapshot gives every page something to show.
 */

const credentials = { user: 'admin', password: 'correct horse battery staple' };
const basic = (c: { user: string; password: string }) => `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;
const AUTH = { authorization: basic(credentials) };

let env: RunEnv;
let board: BoardServer;
let runId: string;
beforeAll(async () => {
  env = await createRunEnv('boardapi');
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', credentials, options: { sweepIntervalMs: 60_000 } });
  runId = await env.enqueue('dry');
  const ended = await env.waitForEnd(runId, 90_000);
  expect(ended.status, JSON.stringify(ended.error)).toBe('succeeded');
}, 120_000);
afterAll(async () => {
  await board?.close();
  await env?.close();
});

describe('Bull Board at /admin/queues', () => {
  it('answers 401 with a Basic challenge without credentials or with a wrong password', async () => {
    const none = await fetch(`${board.url}/admin/queues`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await fetch(`${board.url}/admin/queues`, { headers: { authorization: basic({ ...credentials, password: 'wrong' }) } });
    expect(wrong.status).toBe(401);
    const api = await fetch(`${board.url}/admin/queues/api/queues`);
    expect(api.status).toBe(401);
  });

  it('opens with the credentials and lists all eight phase queues, each read-only', async () => {
    const ui = await fetch(`${board.url}/admin/queues`, { headers: AUTH });
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
    const res = await fetch(`${board.url}/admin/queues/api/queues`, { headers: AUTH });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { name: string; readOnlyMode: boolean; allowRetries: boolean }[] };
    expect(body.queues.map((q) => q.name).sort()).toEqual([...PHASES].sort());
    for (const q of body.queues) expect(q, q.name).toMatchObject({ readOnlyMode: true, allowRetries: false });
  });

  it('refuses every mutating route (promote, promote all, change delay, add, retry, clean, pause…) and changes nothing', async () => {
    const job = `${runId}.verify`;
    const routes: [string, string, unknown?][] = [
      ['PUT', `/api/queues/verify/${job}/promote`],
      ['PUT', '/api/queues/approval-gate/promote'],
      ['PATCH', `/api/queues/verify/${job}/delay`, { delay: 1 }],
      ['POST', '/api/queues/execute/add', { name: 'execute', data: { runId: 'run-forged-000000' } }],
      ['PUT', `/api/queues/verify/${job}/retry`],
      ['PUT', '/api/queues/verify/retry/completed'],
      ['PUT', `/api/queues/verify/${job}/clean`],
      ['PUT', '/api/queues/verify/clean/completed'],
      ['PUT', '/api/queues/verify/pause'],
      ['PUT', '/api/queues/pause'],
      ['PUT', '/api/queues/verify/empty'],
      ['PUT', '/api/queues/verify/obliterate'],
      ['PATCH', `/api/queues/verify/${job}/update-data`, { data: {} }],
      ['DELETE', `/api/queues/verify/${job}`],
    ];
    for (const [method, path, body] of routes) {
      const res = await fetch(`${board.url}/admin/queues${path}`, {
        method,
        headers: { ...AUTH, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BOARD_READ_ONLY');
    }
    // Nothing moved: the verify job is still completed, no queue is paused, execute got no job.
    const verify = new Queue('verify', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    const execute = new Queue('execute', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
    try {
      expect(await (await verify.getJob(job))?.getState()).toBe('completed');
      expect(await verify.isPaused()).toBe(false);
      expect(await execute.getJobCounts('waiting', 'active', 'delayed', 'completed')).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 1 });
    } finally {
      await verify.close();
      await execute.close();
    }
  });
});

describe('run pages and the run API', () => {
  it('GET /runs answers JSON by default and filters by status', async () => {
    const all = (await (await fetch(`${board.url}/runs`)).json()) as { runs: { run_id: string; status: string; verdict: string; mode: string; target: string }[] };
    expect(all.runs).toContainEqual(expect.objectContaining({ run_id: runId, target: 'icx-work', mode: 'dry', status: 'succeeded', verdict: 'PASS' }));
    const failed = (await (await fetch(`${board.url}/runs?status=failed`)).json()) as { runs: unknown[] };
    expect(failed.runs).toEqual([]);
    expect((await fetch(`${board.url}/runs?status=bogus`)).status).toBe(400);
  });

  it('GET /runs/:id answers the DESIGN §4 run object plus approvals', async () => {
    const view = (await (await fetch(`${board.url}/runs/${runId}`, { headers: { accept: 'application/json' } })).json()) as Record<string, unknown> & {
      plan: Record<string, unknown>;
      phases: { phase: string; state: string }[];
    };
    expect(view).toMatchObject({ run_id: runId, target: 'icx-work', mode: 'dry', status: 'succeeded', verdict: 'PASS' });
    expect(Object.keys(view.plan).sort()).toEqual(['by_op', 'by_transition', 'plan_sha256', 'unit_count']);
    expect(view.phases.map((p) => `${p.phase}:${p.state}`)).toEqual(PHASES.filter((p) => p !== 'approval-gate').map((p) => `${p}:completed`));
    expect(view).toHaveProperty('approvals');
  });

  it('renders HTML for a browser: the list, the run page with every phase and the verdict, the report', async () => {
    const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
    const list = await fetch(`${board.url}/runs`, { headers: browser });
    expect(list.headers.get('content-type')).toMatch(/text\/html/);
    // One URL, two representations: a cache must key on Accept.
    for (const path of ['/runs', `/runs/${runId}`, `/runs/${runId}/report`]) {
      expect((await fetch(`${board.url}${path}`)).headers.get('vary'), path).toMatch(/\bAccept\b/);
    }
    expect(await list.text()).toContain(`href="/runs/${runId}"`);
    const page = await (await fetch(`${board.url}/runs/${runId}`, { headers: browser })).text();
    for (const phase of ['precheck', 'grant-probe', 'discover', 'cutplan', 'backup', 'execute', 'verify']) expect(page).toContain(`data-phase="${phase}"`);
    expect(page).toMatch(/id="verdict"><span class="PASS">PASS<\/span>/);
    expect(page).toContain('Verification (G8)');
    const md = await fetch(`${board.url}/runs/${runId}/report`);
    expect(md.headers.get('content-type')).toMatch(/text\/markdown/);
    expect(await md.text()).toContain(`# Run ${runId}`);
    const report = await fetch(`${board.url}/runs/${runId}/report`, { headers: browser });
    expect(report.headers.get('content-type')).toMatch(/text\/html/);
    expect(await report.text()).toContain(`<div id="report"><h1>Run ${runId}</h1>`);
  });

  it('escapes what a run carries and sends security headers', async () => {
    const hostile = 'run-hostile-000001';
    await insertRun(env.db.pool, {
      runId: hostile, target: 'icx-work', corpus: 'ICX-WORK', mode: 'dry', operator: '<script>alert(1)</script>',
      snapshotPath: DEMO_SNAPSHOT, snapshotSha256: '0'.repeat(64), idempotencyKey: null, approvalWindowS: 60,
    });
    const res = await fetch(`${board.url}/runs/${hostile}`, { headers: { accept: 'text/html' } });
    const text = await res.text();
    expect(text).not.toContain('<script>alert(1)</script>');
    expect(text).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
    const big = await fetch(`${board.url}/runs`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(64 * 1024) });
    expect(big.status).toBe(413);
  });
});

/** Parses Prometheus text exposition (0.0.4) strictly; throws on a line it cannot read. */
function parseProm(text: string): { types: Map<string, string>; samples: { name: string; labels: Record<string, string>; value: number }[] } {
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type?.[1] && type[2]) {
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$/.exec(line);
    if (!m?.[1] || m[3] === undefined) throw new Error(`not Prometheus text: ${line}`);
    const value = Number(m[3].replace('+Inf', 'Infinity'));
    // Prometheus reads values with Go's ParseFloat, which takes NaN in any case (prom-client writes "Nan").
    if (Number.isNaN(value) && m[3].toLowerCase() !== 'nan') throw new Error(`bad value: ${line}`);
    const labels: Record<string, string> = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l): [string, string] => [l[1] ?? '', l[2] ?? '']));
    samples.push({ name: m[1], labels, value });
  }
  return { types, samples };
}

/** The demo seed's two history runs (docs/design.md §2), succeeded, each with an execute and a verify phase. */
const HISTORY_RUNS = 2;

describe('/metrics', () => {
  it('parses as Prometheus text with runs by status, phase durations, approvals by code and queue depths', async () => {
    const refused = await fetch(`${board.url}/runs/${runId}/approvals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"document": 1}' });
    const code = ((await refused.json()) as { error: { code: string } }).error.code;
    const res = await fetch(`${board.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types, samples } = parseProm(await res.text());
    const find = (name: string, labels: Record<string, string>) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(types.get('cutter_runs')).toBe('gauge');
    expect(find('cutter_runs', { status: 'succeeded' })).toBe(1 + HISTORY_RUNS);
    expect(types.get('cutter_phase_duration_seconds')).toBe('histogram');
    expect(find('cutter_phase_duration_seconds_count', { phase: 'execute', state: 'completed' })).toBe(1 + HISTORY_RUNS);
    expect(find('cutter_phase_duration_seconds_bucket', { phase: 'verify', le: '+Inf' })).toBe(1 + HISTORY_RUNS);
    expect(types.get('cutter_approvals_total')).toBe('counter');
    expect(find('cutter_approvals_total', { outcome: 'refused', code })).toBe(1);
    expect(find('cutter_queue_jobs', { queue: 'precheck', state: 'completed' })).toBe(1);
    expect(find('cutter_queue_jobs', { queue: 'approval-gate', state: 'delayed' })).toBe(0);
    expect(find('cutter_runs', { status: 'expired' }), 'a status no run has reports 0').toBe(0);
    expect(types.get('process_cpu_seconds_total'), 'default process metrics').toBe('counter');
  });

  it('histograms only grow: scrapes before, during and after another run never show a bucket or count going down', async () => {
    const scrape = async () => parseProm(await (await fetch(`${board.url}/metrics`)).text()).samples.filter((s) => s.name.startsWith('cutter_phase_duration_seconds_'));
    const series = (s: { name: string; labels: Record<string, string> }) => `${s.name}${JSON.stringify(s.labels)}`;
    const before = await scrape();
    const second = await env.enqueue('dry');
    const during = await scrape();
    expect((await env.waitForEnd(second, 90_000)).status).toBe('succeeded');
    const after = await scrape();
    const again = await scrape();
    for (const [older, newer] of [[before, during], [during, after], [after, again]] as const) {
      const now = new Map(newer.map((s) => [series(s), s.value]));
      for (const s of older.filter((x) => !x.name.endsWith('_sum'))) expect(now.get(series(s)), series(s)).toBeGreaterThanOrEqual(s.value);
    }
    const count = (samples: typeof after) => samples.find((s) => s.name === 'cutter_phase_duration_seconds_count' && s.labels['phase'] === 'execute' && s.labels['state'] === 'completed')?.value;
    expect(count(before)).toBe(1 + HISTORY_RUNS);
    expect(count(after), 'the second run observed once').toBe(2 + HISTORY_RUNS);
    expect(count(again), 'and not again on the next scrape').toBe(2 + HISTORY_RUNS);
    // A phase that ages out of the window read at start (or a table restored to an earlier state) is history already counted.
    await env.db.pool.query(`UPDATE cutter_governance.run_phase SET started_at = started_at - interval '40 days', finished_at = finished_at - interval '40 days' WHERE run_id = $1`, [runId]);
    expect(count(await scrape()), 'phases that left the window still counted').toBe(2 + HISTORY_RUNS);
  }, 120_000);
});
