import { z } from 'zod';
import type { Pool, PoolClient } from '../db/pool.js';
import type { WebhookEndpoint } from './endpoints.js';

/**
 * The notification outbox and its deliveries (migration 023). Events enter
 * the outbox only through the trigger on audit_event; everything here reads
 * them, records what was sent, and shows it.
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

/** Events older than this are never dispatched: an endpoint configured today is not sent last month's runs. */
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

/**
 * Takes up to `limit` recent events not yet dispatched, locked so that
 * fleets sweeping at once take different ones.
 */
export async function takeUndispatched(tx: PoolClient, limit: number): Promise<number[]> {
  const { rows } = await tx.query<{ seq: number }>(
    `SELECT seq FROM cutter_governance.notification
      WHERE dispatched_at IS NULL AND at > now() - $2::interval
      ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit, DISPATCH_BACKLOG],
  );
  return rows.map((r) => r.seq);
}

/** Records the configured endpoints; returns the ids of those a 410 disabled. */
export async function registerEndpoints(db: Db, endpoints: readonly WebhookEndpoint[]): Promise<Set<string>> {
  const { rows } = await db.query<{ endpoint_id: string; disabled: boolean }>(
    `INSERT INTO cutter_governance.webhook_endpoint (endpoint_id, label)
     SELECT * FROM unnest($1::text[], $2::text[])
     ON CONFLICT (endpoint_id) DO UPDATE SET label = EXCLUDED.label
     RETURNING endpoint_id, disabled_at IS NOT NULL AS disabled`,
    [endpoints.map((e) => e.id), endpoints.map((e) => e.label)],
  );
  return new Set(rows.filter((r) => r.disabled).map((r) => r.endpoint_id));
}

/** One delivery row per (event, endpoint); a disabled endpoint's is disabled from the start. Marks the events dispatched. */
export async function createDeliveries(tx: PoolClient, seqs: readonly number[], endpointIds: readonly string[], disabled: ReadonlySet<string>): Promise<void> {
  await tx.query(
    `INSERT INTO cutter_governance.notification_delivery (seq, endpoint_id, state)
     SELECT s, e, CASE WHEN e = ANY($3::text[]) THEN 'disabled' ELSE 'pending' END
       FROM unnest($1::bigint[]) s CROSS JOIN unnest($2::text[]) e
     ON CONFLICT (seq, endpoint_id) DO NOTHING`,
    [seqs, endpointIds, [...disabled]],
  );
  await tx.query('UPDATE cutter_governance.notification SET dispatched_at = now() WHERE seq = ANY($1::bigint[])', [seqs]);
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
