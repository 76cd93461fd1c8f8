import { UnrecoverableError, type Job } from 'bullmq';
import { withTransaction, type Pool } from '../../shared/db/pool.js';
import type { Logger } from '../../shared/logger.js';
import type { WebhookEndpoint } from '../../shared/notify/endpoints.js';
import { webhookBody } from '../../shared/notify/message.js';
import { NOTIFY_POLICY, notifyJobData, retryDelayMs } from '../../shared/notify/policy.js';
import { postWebhook } from '../../shared/notify/post.js';
import { signWebhook } from '../../shared/notify/signature.js';
import { deliveryState, disableEndpoint, loadEvent, recordAttempt, type DeliveryState } from '../../shared/notify/store.js';

/** What delivering a notification needs; injected so the processor stays a plain function. */
export interface NotifyDeps {
  pool: Pool;
  log: Logger;
  endpoints: readonly WebhookEndpoint[];
  /** CUTTER_WEBHOOK_SECRET, `whsec_…`. */
  secret: string;
  boardUrl: string;
  timeoutMs: number;
}

/** A failed attempt to be tried again after delayMs (read by the notify worker's backoff strategy). */
export class RetryLater extends Error {
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
    this.name = 'RetryLater';
  }
}

/**
 * Delivers one event to one endpoint, once per attempt, and records how the
 * attempt ended. 2xx: delivered. 410: the endpoint is disabled. Anything
 * else (a 3xx included: redirects are not followed, a timeout, a refused
 * connection) is retried after the policy's delay, at least what a
 * Retry-After asked, until the attempts run out: failed.
 */
export async function deliverNotification(job: Job, deps: NotifyDeps): Promise<{ state: DeliveryState | 'skipped' }> {
  const parsed = notifyJobData.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`JOB_DATA_INVALID: notify job ${job.id ?? '?'} has malformed data`);
  const { seq, endpointId } = parsed.data;
  const attempt = job.attemptsMade + 1;
  // `posted` false: settled without a request, which is no attempt at the receiver.
  const record = (state: DeliveryState, status: number | null, error: string | null, nextAttemptAt: Date | null = null, posted = true) =>
    recordAttempt(deps.pool, { seq, endpointId, state, attempts: posted ? attempt : 0, status, error, nextAttemptAt });

  const current = await deliveryState(deps.pool, seq, endpointId);
  // Delivered, failed or disabled already (a re-added job, a redelivery): nothing to send.
  if (current?.state !== 'pending') return { state: 'skipped' };
  if (current.endpoint_disabled) {
    await record('disabled', null, 'endpoint disabled by an earlier 410 Gone', null, false);
    return { state: 'disabled' };
  }
  const endpoint = deps.endpoints.find((e) => e.id === endpointId);
  const event = await loadEvent(deps.pool, seq);
  if (!endpoint || !event) {
    await record('failed', null, endpoint ? 'event missing from the outbox' : 'endpoint no longer in CUTTER_WEBHOOK_URLS', null, false);
    return { state: 'failed' };
  }

  const body = JSON.stringify(webhookBody(event, deps.boardUrl));
  const timestamp = Math.floor(Date.now() / 1000);
  const outcome = await postWebhook(
    endpoint.url,
    {
      'content-type': 'application/json',
      'user-agent': 'cutter-webhooks/1',
      'webhook-id': event.webhook_id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(deps.secret, event.webhook_id, timestamp, body),
    },
    body,
    deps.timeoutMs,
  );
  const log = deps.log.child({ seq, event: event.type, run_id: event.run_id, endpoint: endpoint.label, attempt });
  if (outcome.status !== null && outcome.status >= 200 && outcome.status < 300) {
    await record('delivered', outcome.status, null);
    log.debug('notification delivered');
    return { state: 'delivered' };
  }
  if (outcome.status === 410) {
    // Together: whoever sees this delivery disabled also sees its endpoint disabled.
    await withTransaction(deps.pool, async (tx) => {
      await recordAttempt(tx, { seq, endpointId, state: 'disabled', attempts: attempt, status: 410, error: 'HTTP 410 Gone: endpoint disabled', nextAttemptAt: null });
      await disableEndpoint(tx, endpointId, `HTTP 410 Gone for ${event.webhook_id}`);
    });
    log.warn('endpoint answered 410 Gone: disabled');
    return { state: 'disabled' };
  }
  const error = outcome.error ?? (outcome.status !== null && outcome.status >= 300 && outcome.status < 400 ? `HTTP ${outcome.status} (redirect not followed)` : `HTTP ${outcome.status ?? '?'}`);
  const final = attempt >= (job.opts.attempts ?? NOTIFY_POLICY.attempts);
  if (final) {
    await record('failed', outcome.status, error);
    log.warn({ error }, 'notification failed: attempts exhausted');
    throw new UnrecoverableError(`NOTIFY_FAILED: ${error}`);
  }
  const delayMs = retryDelayMs(attempt, outcome.retryAfterMs);
  await record('pending', outcome.status, error, new Date(Date.now() + delayMs));
  log.info({ error, delay_ms: delayMs }, 'notification attempt failed; will retry');
  throw new RetryLater(error, delayMs);
}

/** The notify worker's backoff: the delay the failed attempt chose, or the policy's for an error that chose none. */
export function notifyBackoff(attemptsMade: number, _type?: string, err?: Error): number {
  return err instanceof RetryLater ? err.delayMs : retryDelayMs(attemptsMade, null);
}
