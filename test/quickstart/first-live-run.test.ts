import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, runProcess } from '../support/cli.js';
import { dropDatabase, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';
import { testQueuePrefix } from '../support/prefix.js';
import { freePort, startPrivateRedis, type PrivateRedis } from '../support/redis-server.js';
import { APP_TEST_PASSWORD } from '../support/services.js';

/**
 * docs/first-live-run.md, run as written: every ```sh block in order, in one
 * shell, with only its "Your site" block replaced by this test's own
 * database, Redis (durable, of its own), port and home. Then the run it made
 * is checked in PostgreSQL as an operator would.
 */

const DOC = new URL('../../docs/first-live-run.md', import.meta.url);

/** The doc's shell blocks, in order. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

const name = uniqueDatabaseName('firstlive');
const home = mkdtempSync(join(tmpdir(), 'cutter-firstlive-'));
let redis: PrivateRedis;
beforeAll(async () => {
  redis = await startPrivateRedis({ appendOnly: true });
});
afterAll(async () => {
  await redis?.stop();
  await dropDatabase(name).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('docs/first-live-run.md', () => {
  it('runs as written, from an empty database to a verified live run', async () => {
    const blocks = shellBlocks(readFileSync(DOC, 'utf8'));
    expect(blocks[0], 'the first block is the site settings').toMatch(/^# Your site/);
    const admin = new URL(testDatabaseUrl(name));
    const site = [
      `export ADMIN_URL='${admin.toString()}'`,
      `export DB_HOST_PORT='${admin.host}' DB_NAME='${name}'`,
      // The cluster's cutter_app already has this password (test global setup): setting it again changes nothing for other tests.
      `export APP_PASSWORD='${APP_TEST_PASSWORD}'`,
      `export REDIS_URL='${redis.url}'`,
      `export BOARD_PORT=${await freePort()}`,
      `export BOARD_PASSWORD='first-live-run-test'`,
      `export CUTTER_HOME='${join(home, '.cutter')}'`,
      `export CUTTER_QUEUE_PREFIX='${testQueuePrefix('firstlive')}'`,
    ].join('\n');
    // `cutter` on the PATH, as `npm link` would put it.
    const bin = join(home, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'cutter'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_PATH}" "$@"\n`, { mode: 0o755 });
    const script = [
      'set -euo pipefail',
      // Whatever happens, the board and the workers it started stop with it.
      "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
      site,
      ...blocks.slice(1),
    ].join('\n');
    const result = await runProcess('bash', ['-c', script], {
      cwd: home,
      env: { PATH: `${bin}:${process.env['PATH'] ?? ''}`, HOME: home, LOG_FORMAT: 'json' },
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`.slice(-6000)).toBe(0);

    // What the operator would check afterwards.
    expect(result.stdout).toMatch(/paused at SG_1|awaiting_approval/);
    const psql = await runProcess('psql', ['-X', '-At', '-d', admin.toString(), '-c',
      `SELECT r.status || ' ' || r.verdict || ' ' || r.enqueued_by || ' ' || (SELECT count(*) FROM cutter_governance.execution_ledger l WHERE l.run_id = r.run_id)
         || ' ' || (SELECT string_agg(u.key || '=' || u.state || '@' || u.current_version, ',' ORDER BY u.key) FROM public.information_unit u WHERE u.key IN ('ICX-WORK/001', 'ICX-WORK/002', 'ICX-WORK/500'))
         FROM cutter_governance.run r WHERE r.target = 'icx-work-by-hand'`]);
    expect(psql.stdout.trim()).toBe('succeeded PASS cutter_app 1 ICX-WORK/001=enacted@1,ICX-WORK/002=draft@2,ICX-WORK/500=draft@1');
  }, 240_000);
});
