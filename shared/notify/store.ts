import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool.js';
import type { WebhookEndpoint } from './endpoints.js';

/**
 * The notification outbox and its deliveries (migration 023). Events enter
 * the outbox only through the trigger on audit_event; everything here reads
 * them, records what is sent where, and shows it.
 */

type Db = Pool | PoolClient;

const eventData = z.object({
  target: z.string(),
  mode: z.string(),
  status: z.string(),
  phase: z.string().nullable(),
  plan_sha256: z.string().nullable(),
  error_code: z.string().nullable(),
  reason: z.string().nullable(),
  gate: z.string().nullable(),
  key_name: z.string().nullable(),
  /** The audit chain's head, the event's own row (`SEQ:HASH`); null for an event announced before heads were recorded. */
  audit_head: z.string().nullable().default(null),
});

/** One announced event, as the trigger recorded it when it happened. */
export interface NotificationEvent {
  seq: number;
  webhook_id: string;
  type: string;
  run_id: string;
  at: Date;
  data: z.infer<typeof eventData>;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'disabled';

/** Events older than this are never dispatched: a notifier that was down longer does not send last week's runs. */
export const DISPATCH_BACKLOG = '24 hours';

/** The event of an outbox row; null when there is none. */
export async function loadEvent(db: Db, seq: number): Promise<NotificationEvent | null> {
  const { rows } = await db.query<Omit<NotificationEvent, 'data'> & { data: unknown }>(
    'SELECT seq, webhook_id, type, run_id, at, data FROM cutter_governance.notification WHERE seq = $1',
    [seq],
  );
  const row = rows[0];
  return row ? { ...row, data: eventData.parse(row.data) } : null;
}

/** Records the configured endpoints (the first time, from now on). */
export async function registerEndpoints(db: Db, endpoints: readonly WebhookEndpoint[]): Promise<void> {
  await db.query(
    `INSERT INTO cutter_governance.webhook_endpoint (endpoint_id, label)
     SELECT * FROM unnest($1::text[], $2::text[])
     ON CONFLICT (endpoint_id) DO NOTHING`,
    [endpoints.map((e) => e.id), endpoints.map((e) => e.label)],
  );
}

/**
 * Creates the missing delivery rows of recent events for these endpoints,
 * each endpoint from when it was first configured on (a disabled endpoint's
 * disabled from the start), and returns those this call created: fleets
 * sweeping at once each get their own, and only the creator adds the job.
 */
export async function createDeliveries(db: Db, endpointIds: readonly string[], limit: number): Promise<{ seq: number; endpoint_id: string; state: DeliveryState }[]> {
  const { rows } = await db.query<{ seq: number; endpoint_id: string; state: DeliveryState }>(
    `INSERT INTO cutter_governance.notification_delivery (seq, endpoint_id, state)
     SELECT n.seq, e.endpoint_id, CASE WHEN e.disabled_at IS NULL THEN 'pending' ELSE 'disabled' END
       FROM cutter_governance.webhook_endpoint e
       JOIN cutter_governance.notification n ON n.at >= e.registered_at AND n.at > now() - $2::interval
      WHERE e.endpoint_id = ANY($1::text[])
        AND NOT EXISTS (SELECT 1 FROM cutter_governance.notification_delivery d WHERE d.seq = n.seq AND d.endpoint_id = e.endpoint_id)
      ORDER BY n.seq LIMIT $3
     ON CONFLICT (seq, endpoint_id) DO NOTHING
     RETURNING seq, endpoint_id, state`,
    [endpointIds, DISPATCH_BACKLOG, limit],
  );
  return rows;
}

/**
 * Pending deliveries nobody has touched for a while whose next attempt is
 * overdue: their job may have been lost with Redis. Re-adding one whose job
 * still exists adds nothing (the job id is fixed).
 */
export async function strandedDeliveries(db: Db, endpointIds: readonly string[], idleMs: number): Promise<{ seq: number; endpoint_id: string }[]> {
  const { rows } = await db.query<{ seq: number; endpoint_id: string }>(
    `SELECT seq, endpoint_id FROM cutter_governance.notification_delivery
      WHERE state = 'pending' AND endpoint_id = ANY($1::text[])
        AND updated_at < now() - make_interval(secs => $2 / 1000.0)
        AND (next_attempt_at IS NULL OR next_attempt_at < now() - make_interval(secs => $2 / 1000.0))
      ORDER BY seq LIMIT 500`,
    [endpointIds, idleMs],
  );
  return rows;
}

/** The state of one delivery and whether its endpoint is disabled; null when the row is missing. */
export async function deliveryState(db: Db, seq: number, endpointId: string): Promise<{ state: DeliveryState; endpoint_disabled: boolean } | null> {
  const { rows } = await db.query<{ state: DeliveryState; endpoint_disabled: boolean }>(
    `SELECT d.state, e.disabled_at IS NOT NULL AS endpoint_disabled
       FROM cutter_governance.notification_delivery d JOIN cutter_governance.webhook_endpoint e USING (endpoint_id)
      WHERE d.seq = $1 AND d.endpoint_id = $2`,
    [seq, endpointId],
  );
  return rows[0] ?? null;
}

/** What one attempt ended as. */
export interface AttemptRecord {
  seq: number;
  endpointId: string;
  state: DeliveryState;
  attempts: number;
  status: number | null;
  error: string | null;
  nextAttemptAt: Date | null;
}

/** Records an attempt; a delivery already delivered or disabled stays so. */
export async function recordAttempt(db: Db, a: AttemptRecord): Promise<void> {
  await db.query(
    `UPDATE cutter_governance.notification_delivery
        SET state = $3, attempts = GREATEST(attempts, $4), last_status = $5, last_error = $6, next_attempt_at = $7,
            delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END, updated_at = now()
      WHERE seq = $1 AND endpoint_id = $2 AND state IN ('pending', 'failed')`,
    [a.seq, a.endpointId, a.state, a.attempts, a.status, a.error, a.nextAttemptAt],
  );
}

/** A 410 Gone: the endpoint gets nothing more, and what was waiting for it is disabled with it. */
export async function disableEndpoint(db: Db, endpointId: string, reason: string): Promise<void> {
  await db.query(
    `WITH e AS (
       UPDATE cutter_governance.webhook_endpoint SET disabled_at = coalesce(disabled_at, now()), disabled_reason = coalesce(disabled_reason, $2)
        WHERE endpoint_id = $1)
     UPDATE cutter_governance.notification_delivery SET state = 'disabled', next_attempt_at = NULL, updated_at = now()
      WHERE endpoint_id = $1 AND state = 'pending'`,
    [endpointId, reason],
  );
}

/** A delivery as the run page and the run JSON show it. */
export interface DeliveryView {
  event: string;
  webhook_id: string;
  /** The endpoint's origin; its URL is never shown (it may hold a secret). */
  endpoint: string;
  endpoint_id: string;
  state: DeliveryState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  event_utc: string;
  updated_utc: string;
  next_attempt_utc: string | null;
  delivered_utc: string | null;
}

/** Every delivery of a run's events, oldest event first. */
export async function runDeliveries(db: Db, runId: string): Promise<DeliveryView[]> {
  const { rows } = await db.query<{
    type: string; webhook_id: string; label: string; endpoint_id: string; state: DeliveryState; attempts: number; last_status: number | null;
    last_error: string | null; at: Date; updated_at: Date; next_attempt_at: Date | null; delivered_at: Date | null;
  }>(
    `SELECT n.type, n.webhook_id, e.label, d.endpoint_id, d.state, d.attempts, d.last_status, d.last_error, n.at, d.updated_at, d.next_attempt_at, d.delivered_at
       FROM cutter_governance.notification n
       JOIN cutter_governance.notification_delivery d USING (seq)
       JOIN cutter_governance.webhook_endpoint e USING (endpoint_id)
      WHERE n.run_id = $1 ORDER BY n.seq, e.label, d.endpoint_id`,
    [runId],
  );
  return rows.map((r) => ({
    event: r.type,
    webhook_id: r.webhook_id,
    endpoint: r.label,
    endpoint_id: r.endpoint_id,
    state: r.state,
    attempts: r.attempts,
    last_status: r.last_status,
    last_error: r.last_error,
    event_utc: r.at.toISOString(),
    updated_utc: r.updated_at.toISOString(),
    next_attempt_utc: r.next_attempt_at?.toISOString() ?? null,
    delivered_utc: r.delivered_at?.toISOString() ?? null,
  }));
}
