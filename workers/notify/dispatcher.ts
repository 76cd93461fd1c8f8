import type { Queue } from 'bullmq';
import pg from 'pg';
import type { Pool } from '../../shared/db/pool.js';
import { KEEP_COMPLETED, KEEP_FAILED } from '../../shared/jobs/catalog.js';
import type { Logger } from '../../shared/logger.js';
import type { WebhookEndpoint } from '../../shared/notify/endpoints.js';
import { NOTIFY_POLICY, notifyJobId, type NotifyJobData } from '../../shared/notify/policy.js';
import { createDeliveries, strandedDeliveries } from '../../shared/notify/store.js';

/** The channel the trigger announce_audit_event notifies on. */
export const NOTIFY_CHANNEL = 'cutter_notification';

const BATCH = 200;
/** A pending delivery untouched this long (after its next attempt was due) has its job added again. */
const STRANDED_IDLE_MS = 30_000;

export interface DispatcherOptions {
  pool: Pool;
  databaseUrl: string;
  queue: Queue;
  endpoints: readonly WebhookEndpoint[];
  log: Logger;
  sweepIntervalMs: number;
}

export interface Dispatcher {
  /** One sweep now (and whatever a notification asked for meanwhile). */
  sweep: () => Promise<void>;
  close: () => Promise<void>;
}

/**
 * Turns outbox events into notify jobs: one per (event, endpoint), with a
 * fixed job id. LISTEN wakes it as soon as an event commits; a periodic
 * sweep finds what a lost connection missed. A delivery row is committed
 * before its job is added, so a job never runs ahead of its row; a job that
 * Redis refused or lost is found by the same sweep as a pending delivery
 * nobody touched, and added again under its fixed id, which adds nothing
 * while the job exists.
 */
export function startDispatcher(o: DispatcherOptions): Dispatcher {
  const ids = o.endpoints.map((e) => e.id);
  const jobOpts = { attempts: NOTIFY_POLICY.attempts, backoff: { type: 'notify' }, removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED };
  const add = (jobs: NotifyJobData[]) =>
    o.queue.addBulk(jobs.map((data) => ({ name: 'deliver', data, opts: { ...jobOpts, jobId: notifyJobId(data) } })));

  const sweepOnce = async (): Promise<void> => {
    for (;;) {
      const created = await createDeliveries(o.pool, ids, BATCH);
      const jobs = created.filter((d) => d.state === 'pending').map((d) => ({ seq: d.seq, endpointId: d.endpoint_id }));
      if (jobs.length) await add(jobs);
      if (created.length < BATCH) break;
    }
    const stranded = await strandedDeliveries(o.pool, ids, STRANDED_IDLE_MS);
    if (stranded.length) await add(stranded.map((d) => ({ seq: d.seq, endpointId: d.endpoint_id })));
  };

  // One sweep at a time; a wake-up during one asks for exactly one more after it.
  let running: Promise<void> | null = null;
  let again = false;
  let closed = false;
  const sweep = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await sweepOnce();
        } catch (err) {
          o.log.warn({ err }, 'notification sweep failed; the next one retries');
        }
      } while (again && !closed);
      running = null;
    })();
    return running;
  };

  let listener: pg.Client | null = null;
  const listen = async (): Promise<void> => {
    if (listener || closed) return;
    const client = new pg.Client({ connectionString: o.databaseUrl, application_name: 'cutter-notify' });
    listener = client;
    // A dropped listener is replaced at the next tick; the sweep covers the gap.
    client.on('error', (err) => {
      o.log.warn({ err }, 'notification listener lost');
      if (listener === client) listener = null;
      client.end().catch(() => undefined);
    });
    client.on('end', () => {
      if (listener === client) listener = null;
    });
    client.on('notification', () => void sweep());
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      o.log.warn({ err }, 'notification listener could not start; sweeping only');
      if (listener === client) listener = null;
      await client.end().catch(() => undefined);
    }
  };

  const tick = () => {
    void listen().then(sweep);
  };
  const timer = setInterval(tick, o.sweepIntervalMs);
  tick();

  return {
    sweep,
    close: async () => {
      closed = true;
      clearInterval(timer);
      await running;
      await listener?.end().catch(() => undefined);
      listener = null;
    },
  };
}
