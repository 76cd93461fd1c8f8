import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * The run pages as an admin, an operator and a sovereign read them: a run
 * awaiting approval says how long it has waited, how long is left, what to
 * sign and whether the kill switch is armed; the runs list pages and
 * filters; the report is HTML rendered from its markdown, with nothing a
 * run carries becoming markup.
 */

const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

let env: RunEnv;
let board: BoardServer;
let paused: PausedRun;
const others: string[] = [];
beforeAll(async () => {
  env = await createRunEnv('boardpages');
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, credentials: { user: 'admin', password: 'pages-test' }, options: { sweepIntervalMs: 60_000 } });
  // A run whose plan was ready two hours ago, with a three-hour window.
  paused = await insertPausedRun(env.db.pool);
  await env.db.pool.query(`UPDATE cutter_governance.run SET approval_window_s = 10800 WHERE run_id = $1`, [paused.runId]);
  await env.db.pool.query(`UPDATE cutter_governance.run_phase SET started_at = now() - interval '2 hours 1 second', finished_at = now() - interval '2 hours' WHERE run_id = $1`, [paused.runId]);
  // Two ended runs of the same target, for the list's pages and filters.
  for (let i = 0; i < 2; i += 1) {
    const run = await insertPausedRun(env.db.pool);
    await env.db.pool.query(
      `UPDATE cutter_governance.run SET status = 'failed', failed_phase = 'discover', error_code = 'SNAPSHOT_INVALID',
              error_message = E'snapshot is invalid (2 issues):\\n  line 3: key missing\\n  line 9: <script>alert(1)</script> is not a state', finished_at = now()
        WHERE run_id = $1`,
      [run.runId],
    );
    others.push(run.runId);
  }
}, 120_000);
afterAll(async () => {
  await board?.close();
  await env?.close();
});

const pageOf = async (path: string) => (await fetch(`${board.url}${path}`, { headers: browser })).text();

describe('a run awaiting approval, on its page', () => {
  it('shows the wait, the time left in the window, the exact sign commands and the kill switch off', async () => {
    const page = await pageOf(`/runs/${paused.runId}`);
    expect(page).toMatch(/<p id="window">Waiting for approval for 2 h 0 min; <strong>(0 h 59 min|1 h 0 min)<\/strong> left in the approval window/);
    expect(page).toContain(`cutter approval sign --gate SG_1 --run ${paused.runId} --key KEY.pem --out sg1.json`);
    expect(page).toContain(`cutter approval sign --gate EXEC --run ${paused.runId} --key KEY.pem --out exec.json`);
    expect(page).toMatch(/<td id="kill-switch">off for this run<\/td>/);
    // Each phase links to its job in Bull Board.
    expect(page).toContain(`href="/admin/queues/queue/cutplan/${paused.runId}.cutplan"`);
  });

  it('says when the kill switch is armed for it', async () => {
    await env.db.pool.query(
      `UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`,
      [paused.runId],
    );
    try {
      expect(await pageOf(`/runs/${paused.runId}`)).toMatch(/<td id="kill-switch"><strong>on for this run<\/strong>/);
    } finally {
      await env.db.pool.query(`UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test'`);
    }
  });
});

describe('the runs list and the report', () => {
  it('/ leads to /runs', async () => {
    const res = await fetch(`${board.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/runs');
  });

  it('pages through the runs newest first and filters by status and target', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    do {
      const query: string = next ? `&after=${encodeURIComponent(next)}` : '';
      const body = (await (await fetch(`${board.url}/runs?limit=1${query}`)).json()) as { runs: { run_id: string }[]; next: string | null };
      expect(body.runs.length).toBeLessThanOrEqual(1);
      seen.push(...body.runs.map((r) => r.run_id));
      next = body.next;
    } while (next);
    // Oldest last: the demo seed's history runs (docs/design.md §2).
    expect(seen).toEqual([...others].reverse().concat(paused.runId, 'run-demo-history-2', 'run-demo-history-1'));

    const failed = (await (await fetch(`${board.url}/runs?status=failed&target=icx-work`)).json()) as { runs: { run_id: string }[]; next: string | null };
    expect(failed.runs.map((r) => r.run_id).sort()).toEqual([...others].sort());
    expect(failed.next).toBeNull();
    const protectedRuns = (await (await fetch(`${board.url}/runs?target=icx-const`)).json()) as { runs: { run_id: string }[] };
    expect(protectedRuns.runs.map((r) => r.run_id)).toEqual(['run-demo-history-2']);
    const none = (await (await fetch(`${board.url}/runs?target=icx-work&status=expired`)).json()) as { runs: unknown[] };
    expect(none.runs).toEqual([]);

    const html = await pageOf('/runs?status=failed&limit=1');
    expect(html).toMatch(/<a id="next-page" href="\/runs\?status=failed&#38;limit=1&#38;after=\d+%7E[A-Za-z0-9_-]+">/);
    for (const bad of ['limit=0', 'limit=501', 'after=nonsense', 'target=%3Cx%3E', 'status=done']) {
      const res = await fetch(`${board.url}/runs?${bad}`);
      expect(res.status, bad).toBe(400);
    }
  });

  it('renders the report as HTML from its markdown, escaping what a run carries, one snapshot issue per line; the markdown downloads', async () => {
    const runId = others[0] ?? '';
    const report = await pageOf(`/runs/${runId}/report`);
    expect(report).toMatch(/<div id="report"><h1>Run/);
    expect(report).not.toContain('<script>alert(1)</script>');
    expect(report).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const page = await pageOf(`/runs/${runId}`);
    expect(page).not.toContain('<script>alert(1)</script>');
    // Issues keep their line breaks, shown one per line.
    expect(page).toMatch(/<td class="error"><span class="failed">failed<\/span> in discover: SNAPSHOT_INVALID snapshot is invalid \(2 issues\):\n {2}line 3: key missing\n/);
    const md = await fetch(`${board.url}/runs/${runId}/report?format=md&download=1`);
    expect(md.headers.get('content-disposition')).toBe(`attachment; filename=cutter-report-${runId}.md`);
    expect(await md.text()).toMatch(/^# Run /);
  });
});
