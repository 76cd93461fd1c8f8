import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { UnrecoverableError, type Job } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../shared/audit/append.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { webhookEndpoints } from '../../shared/notify/endpoints.js';
import { NOTIFY_POLICY } from '../../shared/notify/policy.js';
import type { PhaseProcessor } from '../../workers/context.js';
import { deliverNotification } from '../../workers/notify/process.js';
import { startNotifier, type Notifier } from '../../workers/notify/start.js';
import { insertPausedRun } from '../support/paused-run.js';
import { waitFor } from '../support/poll.js';
import { armSwitch, createRunEnv, STAND_IN_GATE, type RunEnv } from '../support/run-env.js';
import { startReceiver, webhookSecret, type Receiver } from '../support/webhook-receiver.js';

/**
 * How one delivery behaves against receivers that misbehave: 410 Gone,
 * Retry-After, a redirect, one that never answers and a closed port.
 * Events are real audit rows; the notifier is the one a fleet starts.
 */

const secret = webhookSecret(randomBytes(32));
const silent = pino({ level: 'silent' });

let env: RunEnv;
let app: Pool;
const receivers: Receiver[] = [];
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  env = await createRunEnv('notifydl');
  app = createPool(env.db.appUrl, { max: 4 });
});
afterAll(async () => {
  // Receivers first: a request one holds open ends, so no notifier's close waits on it.
  for (const r of receivers) await r.close();
  await current?.close();
  for (const close of closers.reverse()) await close();
  await app.end();
  await env.close();
});

async function receiver(answer: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

let current: Notifier | null = null;

/**
 * A notifier as a fleet starts it, as the application's role, for these
 * endpoints, in place of the last one: the processes serving one queue
 * prefix share one configuration (docs/notifications.md).
 */
async function notifier(urls: string[]): Promise<Notifier> {
  await current?.close();
  const n = await startNotifier({ cfg: { ...env.cfg, CUTTER_WEBHOOK_URLS: urls, CUTTER_WEBHOOK_SECRET: secret }, log: silent, pool: app, sweepIntervalMs: 200 });
  if (!n) throw new Error('no notifier started');
  current = n;
  return n;
}

/** A run paused at SG_1 announces it: one event in the outbox; returns its seq. */
async function announce(): Promise<number> {
  const run = await insertPausedRun(env.db.pool);
  return appendAudit(env.db.pool, { actor: 'test', kind: 'run.awaiting_approval', runId: run.runId, detail: {} });
}

interface DeliveryRow {
  state: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
}

async function deliveryWhen(seq: number, url: string, done: (d: DeliveryRow) => boolean): Promise<DeliveryRow> {
  const [endpoint] = webhookEndpoints([url]);
  return waitFor(`delivery of ${seq} to ${url}`, async () => {
    const { rows } = await env.db.pool.query<DeliveryRow>(
      'SELECT state, attempts, last_status, last_error FROM cutter_governance.notification_delivery WHERE seq = $1 AND endpoint_id = $2',
      [seq, endpoint?.id],
    );
    return rows[0] && done(rows[0]) ? rows[0] : undefined;
  }, { deadlineMs: 30_000 });
}

describe('a webhook delivery', () => {
  it('to an endpoint answering 410 Gone disables the endpoint: nothing more is sent to it', async () => {
    const gone = await receiver(() => ({ status: 410 }));
    await notifier([gone.url]);
    const first = await announce();
    expect(await deliveryWhen(first, gone.url, (d) => d.state !== 'pending')).toMatchObject({ state: 'disabled', attempts: 1, last_status: 410 });
    const { rows } = await env.db.pool.query<{ disabled: boolean }>(
      'SELECT disabled_at IS NOT NULL AS disabled FROM cutter_governance.webhook_endpoint WHERE label = $1',
      [gone.url],
    );
    expect(rows).toEqual([{ disabled: true }]);

    const second = await announce();
    expect(await deliveryWhen(second, gone.url, () => true)).toMatchObject({ state: 'disabled', attempts: 0 });
    expect(gone.requests).toHaveLength(1);
  });

  it('waits at least what Retry-After asks before trying again', async () => {
    const busy = await receiver((n) => (n === 1 ? { status: 503, headers: { 'retry-after': '3' } } : { status: 200 }));
    await notifier([busy.url]);
    const seq = await announce();
    const d = await deliveryWhen(seq, busy.url, (row) => row.state === 'delivered');
    expect(d).toMatchObject({ attempts: 2, last_status: 200 });
    const [first, second] = busy.requests;
    // Without Retry-After the first retry comes after 0.5-1 s.
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(3000);
    expect(second?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
  });

  it('does not follow a redirect: a 3xx is a failed attempt, retried at the configured URL', async () => {
    const elsewhere = await receiver(() => ({ status: 200 }));
    const moved = await receiver(() => ({ status: 307, headers: { location: `${elsewhere.url}/hook` } }));
    await notifier([moved.url]);
    const seq = await announce();
    const d = await deliveryWhen(seq, moved.url, (row) => row.attempts >= 2);
    expect(d).toMatchObject({ state: 'pending', last_status: 307 });
    expect(d.last_error).toContain('redirect not followed');
    expect(elsewhere.requests).toHaveLength(0);
  });
});

describe('a delivery whose attempts run out', () => {
  it('is recorded failed with its last status, and its job ends unrecoverable', async () => {
    const down = await receiver(() => ({ status: 502 }));
    await notifier([down.url]);
    const seq = await announce();
    await deliveryWhen(seq, down.url, (row) => row.attempts >= 1);
    await current?.close(); // the retries stop here; the last attempt is made by hand below
    current = null;
    const [endpoint] = webhookEndpoints([down.url]);
    const last = { id: `${seq}.${endpoint?.id ?? ''}`, data: { seq, endpointId: endpoint?.id }, attemptsMade: NOTIFY_POLICY.attempts - 1, opts: { attempts: NOTIFY_POLICY.attempts } } as unknown as Job;
    const deps = { pool: app, log: silent, endpoints: webhookEndpoints([down.url]), secret, boardUrl: env.cfg.CUTTER_BOARD_URL, timeoutMs: 5000 };
    await expect(deliverNotification(last, deps)).rejects.toThrow(UnrecoverableError);
    expect(await deliveryWhen(seq, down.url, () => true)).toMatchObject({ state: 'failed', attempts: NOTIFY_POLICY.attempts, last_status: 502, last_error: 'HTTP 502' });
    // A redelivery of a failed delivery sends nothing.
    const sent = down.requests.length;
    expect(await deliverNotification(last, deps)).toEqual({ state: 'skipped' });
    expect(down.requests).toHaveLength(sent);
  });
});

/** A port nothing listens on: bound, read, and closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a receiver that never answers and a closed port', () => {
  let hanging: Receiver;
  let live: RunEnv;
  let closed: string;
  beforeAll(async () => {
    hanging = await receiver(() => 'hang');
    closed = `http://127.0.0.1:${await closedPort()}/hook`;
    // A timeout longer than the run: the run must end without waiting for it.
    live = await createRunEnv('notifyhang', {
      env: { CUTTER_WEBHOOK_URLS: `${hanging.url},${closed}`, CUTTER_WEBHOOK_SECRET: secret },
      fleet: { notify: { sweepIntervalMs: 200, timeoutMs: 120_000 } },
    });
    closers.push(() => live.close());
  });

  it('neither delays nor fails a live run', async () => {
    const armingGate: PhaseProcessor<'approval-gate'> = async ({ run }) => {
      await armSwitch(live, run.run_id);
      return STAND_IN_GATE;
    };
    await live.startFleet({ 'approval-gate': armingGate });
    const runId = await live.enqueue('live', { approvalWindowS: 1 });
    const view = await live.waitForEnd(runId, 90_000);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');

    // The pause was announced to the hanging receiver, which still holds that request unanswered.
    await waitFor('the hanging receiver to get the pause', () => (hanging.requests.length ? true : undefined));
    expect(hanging.requests.every((r) => r.answered === 'no answer')).toBe(true);
    const pause = view.notifications.find((n) => n.event === 'run.awaiting_approval' && n.endpoint === hanging.url);
    expect(pause).toMatchObject({ state: 'pending', attempts: 0 });

    // The closed port is tried and retried, recorded, and changes nothing for the run either.
    const [refused] = webhookEndpoints([closed]);
    const d = await waitFor('an attempt at the closed port', async () => {
      const { rows } = await live.db.pool.query<DeliveryRow>(
        `SELECT state, attempts, last_status, last_error FROM cutter_governance.notification_delivery
          WHERE endpoint_id = $1 AND attempts >= 1 LIMIT 1`,
        [refused?.id],
      );
      return rows[0];
    });
    expect(d).toMatchObject({ state: 'pending', last_status: null, last_error: 'ECONNREFUSED' });
  });
});
