import { createHash } from 'node:crypto';

/**
 * A webhook endpoint as the rest of cutter sees it. Its URL may carry a
 * secret (a chat tool's incoming webhook does, in the path), so outside this
 * process it is named by `id` (16 hex of its URL's sha256) and shown by
 * `label` (its origin); the URL stays in the configuration.
 */
export interface WebhookEndpoint {
  id: string;
  url: string;
  label: string;
}

/** The endpoints of CUTTER_WEBHOOK_URLS (already validated by the configuration). */
export function webhookEndpoints(urls: readonly string[]): WebhookEndpoint[] {
  return urls.map((url) => ({
    id: createHash('sha256').update(url).digest('hex').slice(0, 16),
    url,
    label: new URL(url).origin,
  }));
}
