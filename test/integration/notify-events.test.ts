import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { runView } from '../../shared/runs/view.js';
import { auditRowHead, reportHead } from '../support/audit-head.js';
import { runCli } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, postApproval, waitForGate } from '../support/sovereign.js';
import { startReceiver, webhookSecret, type Receiver } from '../support/webhook-receiver.js';

/**
 * The acceptance test of notifications: a receiver on loopback that fails
 * its first two deliveries still gets every event of an approved live run,
 * a failed, an expired, a cancelled and a rejected run exactly once by
 * webhook-id, and every
 * request it got carries a signature the independent `standardwebhooks`
 * verifier accepts.
 */

const secret = webhookSecret(randomBytes(32));
const BOARD = 'https://board.example.test';
const silent = pino({ level: 'silent' });

let receiver: Receiver;
let env: RunEnv;
let board: BoardServer;
beforeAll(async () => {
  receiver = await startReceiver((n) => (n <= 2 ? { status: 500 } : { status: 204 }));
  env = await createRunEnv('notifyev', {
    env: { CUTTER_WEBHOOK_URLS: `${receiver.url}/hooks/cutter`, CUTTER_WEBHOOK_SECRET: secret, CUTTER_BOARD_URL: BOARD },
    fleet: { notify: { sweepIntervalMs: 500 } },
  });
  await env.startFleet();
  board = await startBoardServer({ cfg: env.cfg, log: silent, port: 0, host: '127.0.0.1', options: { approvalRateLimit: { windowMs: 60_000, limit: 10_000 }, sweepIntervalMs: 60_000 } });
});
afterAll(async () => {
  await board.close();
  await env.close();
  await receiver.close();
});

interface Body {
  type: string;
  timestamp: string;
  data: { run_id: string; target: string; mode: string; status: string; phase: string | null; plan_sha256: string | null; audit_head: string | null; url: string; text: string; error_code?: string; approval?: { gate: string }; sign?: { plan_sha256: string; gates: string[]; command: string; plan_url: string } };
}

/** Every event the receiver accepted, by webhook-id, after checking each request's signature independently. */
function acceptedEvents(): Map<string, Body> {
  const verifier = new Webhook(secret);
  const byId = new Map<string, Body>();
  const accepted: string[] = [];
  for (const r of receiver.requests) {
    const headers = { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) };
    const body = verifier.verify(r.body, headers) as Body; // throws on a bad signature
    const earlier = byId.get(headers['webhook-id']);
    // A retry carries the same id and the same event.
    if (earlier) expect(body).toEqual(earlier);
    byId.set(headers['webhook-id'], body);
    if (r.answered === 204) accepted.push(headers['webhook-id']);
  }
  // Each event was accepted exactly once: nothing was sent again after a 2xx.
  expect(new Set(accepted).size).toBe(accepted.length);
  expect([...byId.keys()].sort()).toEqual([...accepted].sort());
  return byId;
}

function eventsOf(events: Map<string, Body>, runId: string): Body[] {
  return [...events.values()].filter((b) => b.data.run_id === runId).sort((a, b) => a.timestamp.localeCompare(b.timestamp));
}

async function allDelivered(runIds: string[], count: number): Promise<void> {
  await waitFor(`${count} deliveries delivered`, async () => {
    const { rows } = await env.db.pool.query<{ n: number; pending: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE d.state <> 'delivered')::int AS pending
         FROM cutter_governance.notification_delivery d JOIN cutter_governance.notification n USING (seq) WHERE n.run_id = ANY($1)`,
      [runIds],
    );
    return rows[0]?.n === count && rows[0].pending === 0 ? true : undefined;
  }, { deadlineMs: 60_000, stepMs: 100 });
}

describe('notifications of run events', () => {
  it('reach a receiver that fails its first two deliveries: every event once by webhook-id, each signature valid', async () => {
    // An approved live run: awaiting approval, SG_1 and EXEC accepted, succeeded.
    const approved = await env.enqueue('live', { approvalWindowS: 3600 });
    const run = await waitForGate(env, approved);
    for (const gate of ['SG_1', 'EXEC'] as const) {
      const answer = await postApproval(board.url, approved, approvalFor(run, gate, env.sovereign.key));
      expect(answer.status, JSON.stringify(answer.json)).toBe(201);
    }
    expect((await env.waitForEnd(approved, 90_000)).status).toBe('succeeded');

    // A failed run: a snapshot that does not parse fails discover.
    const bad = join(env.dir, 'bad.ndjson');
    writeFileSync(bad, 'this is not json\n');
    const failed = await env.enqueue('dry', { snapshot: bad });
    const failedView = await env.waitForEnd(failed);
    expect(failedView.status).toBe('failed');

    // An expired run: nobody approves within its window.
    const expired = await env.enqueue('live', { approvalWindowS: 2 });
    expect((await env.waitForEnd(expired)).status).toBe('expired');

    // A cancelled run and a rejected run, both stopped while they await approval.
    const cancelled = await env.enqueue('live', { approvalWindowS: 3600 });
    await waitForGate(env, cancelled);
    const cancel = await runCli(['cancel', cancelled, '--reason', 'wrong snapshot'], env.env);
    expect(cancel.code, cancel.stderr).toBe(0);
    const rejected = await env.enqueue('live', { approvalWindowS: 3600 });
    const toReject = await waitForGate(env, rejected);
    const no = await postApproval(board.url, rejected, approvalFor(toReject, 'REJECT', env.sovereign.key, { allowance: 'reason=the plan touches the wrong units' }));
    expect(no.status, JSON.stringify(no.json)).toBe(201);

    await allDelivered([approved, failed, expired, cancelled, rejected], 11);
    const events = acceptedEvents();
    // The receiver failed two requests, so at least one event was retried.
    expect(receiver.requests.filter((r) => r.answered === 500)).toHaveLength(2);

    const a = eventsOf(events, approved);
    expect(a.map((b) => `${b.type}${b.data.approval ? `:${b.data.approval.gate}` : ''}`)).toEqual([
      'run.awaiting_approval',
      'approval.accepted:SG_1',
      'approval.accepted:EXEC',
      'run.succeeded',
    ]);
    const pause = a[0];
    expect(pause?.data).toMatchObject({ run_id: approved, target: 'icx-work', mode: 'live', status: 'awaiting_approval', phase: 'cutplan', plan_sha256: run.planSha256, url: `${BOARD}/runs/${approved}` });
    expect(pause?.data.sign).toEqual({
      plan_sha256: run.planSha256,
      gates: ['SG_1', 'EXEC'],
      command: `cutter approval sign --gate SG_1 --run ${approved} --key KEY.pem`,
      plan_url: `${BOARD}/runs/${approved}#plan`,
    });
    expect(pause?.data.text).toContain(run.planSha256);
    expect(pause?.data.text).toContain(`${BOARD}/runs/${approved}#plan`);
    expect(a[3]?.data).toMatchObject({ status: 'succeeded', phase: 'verify', plan_sha256: run.planSha256 });

    const f = eventsOf(events, failed);
    expect(f.map((b) => b.type)).toEqual(['run.failed']);
    expect(f[0]?.data).toMatchObject({ mode: 'dry', status: 'failed', phase: 'discover', error_code: failedView.error?.code, plan_sha256: null });
    expect(f[0]?.data.text).toContain(failedView.error?.code ?? '?');

    const e = eventsOf(events, expired);
    expect(e.map((b) => b.type)).toEqual(['run.awaiting_approval', 'run.expired']);
    expect(e[1]?.data).toMatchObject({ status: 'expired', phase: 'approval-gate', error_code: 'APPROVAL_EXPIRED' });

    const c = eventsOf(events, cancelled);
    expect(c.map((b) => b.type)).toEqual(['run.awaiting_approval', 'run.cancelled']);
    expect(c[1]?.data).toMatchObject({ run_id: cancelled, status: 'cancelled' });
    const r = eventsOf(events, rejected);
    expect(r.map((b) => b.type)).toEqual(['run.awaiting_approval', 'run.rejected']);
    expect(r[1]?.data).toMatchObject({ run_id: rejected, status: 'rejected' });
    expect(r[1]?.data.text).toContain('the plan touches the wrong units');

    // Each end's event and its run's report name the same audit chain head: the end's own audit row.
    const ends = [[approved, a[3], 'run.verified'], [failed, f[0], 'run.failed'], [expired, e[1], 'run.expired'], [cancelled, c[1], 'run.cancelled'], [rejected, r[1], 'run.rejected']] as const;
    for (const [id, end, kind] of ends) {
      const head = await auditRowHead(env.db.pool, kind, id);
      expect(end?.data.audit_head).toBe(head);
      expect(await reportHead(env.db.pool, id)).toBe(head);
    }

    for (const b of events.values()) expect(b.data.text).not.toMatch(/\n/);
    for (const r of receiver.requests) {
      expect(r.path).toBe('/hooks/cutter');
      expect(r.headers['content-type']).toBe('application/json');
    }
  }, 180_000);

  it('shows each delivery on the run page and in the run JSON', async () => {
    const { rows } = await env.db.pool.query<{ run_id: string }>(
      `SELECT n.run_id FROM cutter_governance.notification n JOIN cutter_governance.notification_delivery d USING (seq) WHERE d.attempts > 1 ORDER BY d.attempts DESC LIMIT 1`,
    );
    const retried = rows[0]?.run_id;
    if (!retried) throw new Error('no delivery was retried');
    const view = await runView(env.db.pool, retried);
    const first = view?.notifications.find((n) => n.attempts > 1);
    expect(first).toMatchObject({ state: 'delivered', last_status: 204, last_error: null, endpoint: receiver.url });
    expect(first?.webhook_id).toMatch(/^msg_[0-9a-f]{32}$/);

    const json = (await (await fetch(`${board.url}/runs/${retried}`)).json()) as { notifications: { state: string }[] };
    expect(json.notifications.map((n) => n.state)).toEqual(view?.notifications.map(() => 'delivered'));
    const html = await (await fetch(`${board.url}/runs/${retried}`, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('<h2>Notifications</h2>');
    expect(html).toContain(first?.webhook_id ?? '?');
    // The endpoint is shown by its origin: its path may be a secret.
    expect(html).not.toContain('/hooks/cutter');

    const status = await runCli(['status', retried], env.env);
    expect(status.stdout).toContain(`notifications ${view?.notifications.length ?? '?'} delivered\n`);
  });
});
