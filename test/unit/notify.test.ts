import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { redactText } from '../../shared/logger.js';
import { webhookEndpoints } from '../../shared/notify/endpoints.js';
import { NOTIFY_POLICY, parseRetryAfter, retryDelayMs } from '../../shared/notify/policy.js';
import { signWebhook } from '../../shared/notify/signature.js';
import { configRefusal } from '../support/config.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;

const refused = configRefusal;

describe('webhook configuration', () => {
  it('takes a comma list of http(s) URLs with a whsec_ secret, and the board URL for links', () => {
    const cfg = parseConfig({ CUTTER_WEBHOOK_URLS: 'https://hooks.example/a, http://127.0.0.1:9000/b', CUTTER_WEBHOOK_SECRET: secret, CUTTER_BOARD_URL: 'https://board.example/' });
    expect(cfg.CUTTER_WEBHOOK_URLS).toEqual(['https://hooks.example/a', 'http://127.0.0.1:9000/b']);
    expect(cfg.CUTTER_BOARD_URL).toBe('https://board.example');
    expect(parseConfig({}).CUTTER_WEBHOOK_URLS).toEqual([]);
    expect(parseConfig({ CUTTER_API_URL: 'http://10.0.0.5:3000' }).CUTTER_BOARD_URL).toBe('http://10.0.0.5:3000');
  });

  it('refuses a bad URL list naming the variable and the entry, never echoing it', () => {
    const err = refused({ CUTTER_WEBHOOK_URLS: 'https://hooks.example/T0/s3cr3t,ftp://files.example/x', CUTTER_WEBHOOK_SECRET: secret });
    expect(err.variable).toBe('CUTTER_WEBHOOK_URLS');
    expect(err.message).toBe('CUTTER_WEBHOOK_URLS must be a comma-separated list of http(s) URLs; entry 2 is not one');
    expect(refused({ CUTTER_WEBHOOK_URLS: 'not a url', CUTTER_WEBHOOK_SECRET: secret }).variable).toBe('CUTTER_WEBHOOK_URLS');
    expect(refused({ CUTTER_WEBHOOK_URLS: 'https://a.example,https://a.example', CUTTER_WEBHOOK_SECRET: secret }).message).toContain('entry 2 twice');
    expect(refused({ CUTTER_BOARD_URL: 'board.example' }).variable).toBe('CUTTER_BOARD_URL');
  });

  it('refuses a missing or malformed secret naming CUTTER_WEBHOOK_SECRET, never echoing it', () => {
    expect(refused({ CUTTER_WEBHOOK_URLS: 'https://hooks.example/a' }).message).toMatch(/^CUTTER_WEBHOOK_SECRET is required when CUTTER_WEBHOOK_URLS is set/);
    for (const bad of ['s3cr3t-value', 'whsec_', `whsec_${randomBytes(8).toString('base64')}`, `whsec_${randomBytes(65).toString('base64')}`, 'whsec_not*base64']) {
      const err = refused({ CUTTER_WEBHOOK_URLS: 'https://hooks.example/a', CUTTER_WEBHOOK_SECRET: bad });
      expect(err.variable).toBe('CUTTER_WEBHOOK_SECRET');
      expect(err.message).toBe('CUTTER_WEBHOOK_SECRET must be whsec_ followed by the base64 of 24 to 64 random bytes (Standard Webhooks form)');
    }
  });

  it('keeps the secret out of log text', () => {
    expect(redactText(`started with ${secret} set`)).toBe('started with whsec_[redacted] set');
  });
});

describe('webhook signing and retries', () => {
  it('signs as Standard Webhooks does: the independent verifier accepts it', () => {
    const body = JSON.stringify({ type: 'run.succeeded', timestamp: new Date().toISOString(), data: { text: 'ünïcode ✓' } });
    const ts = Math.floor(Date.now() / 1000);
    const signature = signWebhook(secret, 'msg_0123456789abcdef0123456789abcdef', ts, body);
    expect(signature).toBe(new Webhook(secret).sign('msg_0123456789abcdef0123456789abcdef', new Date(ts * 1000), body));
    expect(() => new Webhook(secret).verify(body, { 'webhook-id': 'msg_0123456789abcdef0123456789abcdef', 'webhook-timestamp': String(ts), 'webhook-signature': signature })).not.toThrow();
  });

  it('backs off exponentially with jitter, capped, and waits at least what Retry-After asks', () => {
    expect(retryDelayMs(1, null, () => 0)).toBe(500);
    expect(retryDelayMs(1, null, () => 1)).toBe(1000);
    expect(retryDelayMs(4, null, () => 0)).toBe(4000);
    expect(retryDelayMs(4, null, () => 1)).toBe(8000);
    expect(retryDelayMs(30, null, () => 1)).toBe(NOTIFY_POLICY.maxDelayMs);
    expect(retryDelayMs(1, 30_000, () => 1)).toBe(30_000);
    expect(retryDelayMs(1, 10 * 3600_000, () => 1)).toBe(NOTIFY_POLICY.maxRetryAfterMs);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-12-05T20:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Sat, 05 Dec 2026 20:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it('names an endpoint by a hash of its URL and shows only its origin', () => {
    const [e] = webhookEndpoints(['https://user:pw@hooks.example/services/T0/B0/s3cr3t']);
    expect(e?.id).toMatch(/^[0-9a-f]{16}$/);
    expect(e?.label).toBe('https://hooks.example');
  });
});
