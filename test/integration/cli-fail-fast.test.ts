import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/cli.js';
import { freePort } from '../support/redis-server.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';

/**
 * `cutter run` with a service it cannot reach, or no worker to take the run:
 * it says which variable or queue is wrong, exits at once, and writes no run
 * (a run row whose jobs never reached Redis is one the board later calls lost).
 */

let env: RunEnv;
beforeAll(async () => {
  env = await createRunEnv('failfast');
});
afterAll(async () => {
  await env.close();
});

// The runs this file enqueues (the demo history's are on the ICX-CONST targets).
const runs = async () => Number((await env.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM cutter_governance.run WHERE target = 'icx-work'`)).rows[0]?.n);
const enqueueDry = (vars: Record<string, string> = {}) =>
  runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry'], { ...env.env, ...vars });

/** One line on stderr, no stack trace. */
function oneLine(result: CliResult): string {
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  return lines[0] ?? '';
}

describe('cutter run fails fast, naming what to fix', () => {
  it('Redis down: exit 2 naming REDIS_URL, no run written', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const result = await enqueueDry({ REDIS_URL: url });
    expect(result.code, result.stderr).toBe(2);
    expect(oneLine(result)).toBe(`cutter: REDIS_URL ${url}: connection refused (is the server running on that host and port?) [REDIS_UNREACHABLE]`);
    expect(await runs()).toBe(0);
  });

  it('PostgreSQL down: exit 2 naming DATABASE_URL with its password redacted, no run written', async () => {
    const port = await freePort();
    const result = await enqueueDry({ DATABASE_URL: `postgres://cutter_app:s3cret@127.0.0.1:${port}/cutter` });
    expect(result.code, result.stderr).toBe(2);
    const line = oneLine(result);
    expect(line).toBe(`cutter: DATABASE_URL postgres://cutter_app:***@127.0.0.1:${port}/cutter: connection refused (is the server running on that host and port?) [DATABASE_UNREACHABLE]`);
    expect(line).not.toContain('s3cret');
    expect(await runs()).toBe(0);
  });

  it('a database that does not exist, or a malformed DATABASE_URL: exit 2 naming DATABASE_URL', async () => {
    const missing = new URL(env.env['DATABASE_URL'] ?? '');
    missing.pathname = '/cuter';
    const wrongName = await enqueueDry({ DATABASE_URL: missing.toString() });
    expect(wrongName.code, wrongName.stderr).toBe(2);
    expect(oneLine(wrongName)).toMatch(/^cutter: DATABASE_URL postgres:\/\/.*\/cuter: the database does not exist \(cutter db migrate creates it\) \[DATABASE_UNREACHABLE\]$/);

    for (const bad of ['postgres://x:y@db.example:notaport/cutter', 'not a url', 'postgres://127.0.0.1:5432']) {
      const malformed = await enqueueDry({ DATABASE_URL: bad });
      expect(malformed.code, `${bad}: ${malformed.stderr}`).toBe(2);
      expect(oneLine(malformed)).toMatch(/^cutter: DATABASE_URL must .* \[CONFIG_INVALID\]$/);
    }
    expect(await runs()).toBe(0);
  });

  it('no worker on the phase queues: exit 1 naming the queues; --allow-no-workers enqueues anyway', async () => {
    const refused = await enqueueDry();
    expect(refused.code, refused.stderr).toBe(1);
    expect(oneLine(refused)).toMatch(/no worker serves the queue\(s\) precheck, grant-probe, discover, cutplan, backup, execute, verify under prefix .*--allow-no-workers.*\[NO_WORKERS\]$/);
    expect(await runs()).toBe(0);

    // Enqueued for workers that come later: it waits, and the fleet that starts then takes it to the end.
    const waiting = runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'dry', '--allow-no-workers', '--json'], env.env);
    await expect.poll(runs, { timeout: 10_000 }).toBe(1);
    await env.startFleet();
    const result = await waiting;
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'succeeded', verdict: 'PASS' });
  }, 120_000);

  it('a --json error is JSON on stdout', async () => {
    const result = await runCli(['status', 'run-00000000-000000-000000', '--json'], env.env);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({ error: { code: 'RUN_UNKNOWN', message: expect.stringContaining('run-00000000-000000-000000') as string } });
  });
});

describe('conventions a user\'s tools expect', () => {
  it('cutter --version prints the package version; --help works whatever the environment', async () => {
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await runCli(['--help'], { REDIS_URL: 'bad', DATABASE_URL: 'also bad' });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: cutter');
    const commandHelp = await runCli(['run', '--help'], { REDIS_URL: 'bad' });
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.stdout).toContain('--allow-no-workers');
  });

  it('numbers are parsed by the command line: a bad --port is refused naming it, exit 2', async () => {
    const result = await runCli(['board', '--port', '70000'], env.env);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe("error: option '--port <port>' argument '70000' is invalid. It must be a whole number from 0 to 65535.");
  });

  it('cutter plan --mode and --max-errors are parsed by the command line too', async () => {
    const mode = await runCli(['plan', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'wet'], env.env);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toMatch(/'wet' is invalid\. Allowed choices are live, dry/);
    const maxErrors = await runCli(['plan', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--max-errors', '0'], env.env);
    expect(maxErrors.code).toBe(2);
    expect(maxErrors.stderr).toMatch(/--max-errors <n>' argument '0' is invalid\. It must be a whole number from 1 to 10000\./);
  });

  it('--mode is one of its choices', async () => {
    const result = await runCli(['run', '--target', 'icx-work', '--snapshot', DEMO_SNAPSHOT, '--mode', 'wet'], env.env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/'wet' is invalid\. Allowed choices are dry, live/);
  });
});
