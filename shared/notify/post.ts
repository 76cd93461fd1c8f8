import { parseRetryAfter } from './policy.js';

/** How one POST ended: an HTTP status (any, 3xx included) or a transport error. */
export interface PostOutcome {
  status: number | null;
  /** What a Retry-After header asked for, in ms; null without one. */
  retryAfterMs: number | null;
  error: string | null;
}

/**
 * POSTs a webhook once. Redirects are not followed (a 3xx is an answer like
 * any other non-2xx: the configured URL is the one that was trusted); the
 * request gives up after timeoutMs whatever the receiver does.
 */
export async function postWebhook(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<PostOutcome> {
  try {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    // Read (and drop) the body so the connection is released; bounded by the same timeout.
    await res.arrayBuffer().catch(() => undefined);
    return { status: res.status, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')), error: null };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const reason = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    return { status: null, retryAfterMs: null, error: reason };
  }
}
