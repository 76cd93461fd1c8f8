import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../shared/logger.js';
import { runProcess } from '../support/cli.js';
import { dropDatabase, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';
import { testQueuePrefix } from '../support/prefix.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const name = uniqueDatabaseName('quickstart');
// The demo keeps its throwaway GnuPG key under $HOME/.cutter-demo.
const home = mkdtempSync(join(tmpdir(), 'cutter-home-'));
afterAll(async () => {
  await dropDatabase(name);
  rmSync(home, { recursive: true, force: true });
});

function npmRunDemo(env: Record<string, string>) {
  return runProcess('npm', ['run', '--silent', 'demo'], { cwd: ROOT, env: { ...process.env, ...env } });
}

/** The block of expected output the README shows after `npm run demo`. */
function readmeDemoOutput(): string {
  const readme = readFileSync(new URL('README.md', `file://${ROOT}`), 'utf8');
  const match = /`npm run demo` builds[\s\S]*?```\n([\s\S]*?)```/.exec(readme);
  if (!match?.[1]) throw new Error('README has no expected-output block after "npm run demo builds"');
  return match[1];
}

describe('README quickstart', () => {
  it('`npm run demo` on a fresh database prints what the README shows, and a second run inserts nothing', async () => {
    const env = { DATABASE_URL: testDatabaseUrl(name), LOG_FORMAT: 'json', CUTTER_QUEUE_PREFIX: testQueuePrefix('demo'), HOME: home };
    const first = await npmRunDemo(env);
    expect(first.code, first.stderr).toBe(0);
    // The README shows the default DATABASE_URL; this test's database has a name of its own.
    expect(first.stdout.replaceAll(redactUrl(env.DATABASE_URL), 'postgres://postgres:***@127.0.0.1:5432/cutter')).toContain(readmeDemoOutput().trimEnd());
    expect(first.stdout).toMatch(/CUTTER_ALLOW_VOLATILE_REDIS=true \(a live run by hand needs Redis with appendonly yes/);
    expect(first.stdout).toMatch(/✓ verify/);
    expect(first.stdout).toMatch(/run run-[0-9a-z-]+: succeeded, verdict PASS/);
    expect(first.stdout).toContain('## Verification (G8)');
    expect(first.stdout).toMatch(/paused at SG_1; plan [0-9a-f]{64}/);
    expect(first.stdout).toMatch(/live run run-[0-9a-z-]+: succeeded, verdict PASS/);

    const second = await npmRunDemo(env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('0 unit(s) inserted');
    // The first run's live cut added ICX-WORK/099–108; the second does not cut again.
    expect(second.stdout).toContain('total: 168 units');
    expect(second.stdout).toContain('skipped: the demo snapshot is already applied');
  });
});
