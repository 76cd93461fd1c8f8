import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACT_PATHS, redactText, redactUrl } from '../../shared/logger.js';

describe('log redaction', () => {
  it('removes the password from connection URLs', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/cutter')).toBe('postgres://app:***@db:5432/cutter');
    expect(redactUrl('redis://:pw@127.0.0.1:6379')).toBe('redis://:***@127.0.0.1:6379');
    expect(redactUrl('connect to redis://default:pw@h:1 now')).toBe('connect to redis://default:***@h:1 now');
  });

  it('removes private key blocks from free text', () => {
    const text = 'key:\n-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\nend';
    expect(redactText(text)).toBe('key:\n[private key redacted]\nend');
  });

  it('censors signatures and passwords in structured fields', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    log.info({ envelope: { signature: 'c2lnbmF0dXJl', key_id: 'abcd' }, password: 'pw' }, 'approval received');
    const entry = JSON.parse(lines[0] ?? '{}') as { envelope: { signature: string; key_id: string }; password: string };
    expect(entry.envelope.signature).toBe('[redacted]');
    expect(entry.envelope.key_id).toBe('abcd');
    expect(entry.password).toBe('[redacted]');
  });
});
