import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

/** A worker (or any command) with a bad webhook setting stops at start with exit 2, naming the variable, never the value. */
describe('webhook settings at start', () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const cases: [string, Record<string, string>, string][] = [
    ['a URL that is not http(s)', { CUTTER_WEBHOOK_URLS: 'https://hooks.example/T0/s3cr3t,gopher://x', CUTTER_WEBHOOK_SECRET: secret }, 'CUTTER_WEBHOOK_URLS must be a comma-separated list of http(s) URLs; entry 2 is not one'],
    ['URLs without a secret', { CUTTER_WEBHOOK_URLS: 'https://hooks.example/T0/s3cr3t' }, 'CUTTER_WEBHOOK_SECRET is required when CUTTER_WEBHOOK_URLS is set'],
    ['a secret not in whsec_ form', { CUTTER_WEBHOOK_URLS: 'https://hooks.example/T0/s3cr3t', CUTTER_WEBHOOK_SECRET: 'hunter2-hunter2-hunter2-hunter2' }, 'CUTTER_WEBHOOK_SECRET must be whsec_'],
  ];
  for (const [what, env, message] of cases) {
    it(`refuses ${what}`, async () => {
      const r = await runCli(['worker'], { REDIS_URL: 'redis://127.0.0.1:1', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', ...env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr).toContain('CONFIG_INVALID');
      expect(r.stdout).not.toContain('worker ready');
      for (const value of ['s3cr3t', 'hunter2', secret.slice('whsec_'.length)]) expect(r.stderr).not.toContain(value);
    });
  }
});
