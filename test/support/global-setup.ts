import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { loadFunctionFiles } from '../../shared/db/function-files.js';
import { loadMigrations } from '../../shared/db/numbered-migrations.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { APP_ROLE } from '../../shared/grants/matrix.js';
import { APP_TEST_PASSWORD, resolveServices, withDatabase } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
    templateDatabase: string;
  }
}

/**
 * Builds dist/ for the tests that spawn the CLI. A type error still emits
 * JavaScript (the typecheck step of CI is what fails on it), so tests of
 * untouched code keep running while one file is mid-edit.
 */
function buildCli(): void {
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  } catch {
    process.stderr.write('global-setup: tsc reported errors; testing the JavaScript it emitted anyway\n');
  }
  execFileSync('node', ['scripts/copy-sql.mjs'], { stdio: 'inherit' });
}

/**
 * Once per test run: build the CLI the tests spawn, find the services, and
 * migrate a template database that every test file clones (cloning is far
 * faster than migrating each database).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  buildCli();
  const services = await resolveServices();
  const migrations = await loadMigrations();
  const { functions, triggers } = await loadFunctionFiles();
  // Named for everything migrate applies, so an edited function file gets a template of its own.
  const hash = createHash('sha256')
    .update(migrations.map((m) => m.sha256).join(','))
    .update([...functions, ...triggers].map((f) => `${f.name}\n${f.sql}`).join('\0'))
    .digest('hex')
    .slice(0, 12);
  const templateDatabase = `cutter_tpl_${hash}`;
  await migrate(withDatabase(services.postgresUrl, templateDatabase), { execRole: 'cutter_exec' });
  await setAppPassword(services.postgresUrl);
  project.provide('postgresUrl', services.postgresUrl);
  project.provide('redisUrl', services.redisUrl);
  project.provide('templateDatabase', templateDatabase);
  return services.stop;
}

/**
 * `cutter db migrate` creates the application's login role without a
 * password (the administrator gives it one); the tests give it a known one,
 * so the workers and the board they start connect as it, not as the
 * superuser, wherever the server asks for passwords.
 */
async function setAppPassword(postgresUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(`ALTER ROLE ${APP_ROLE} WITH LOGIN PASSWORD '${APP_TEST_PASSWORD}'`);
  } finally {
    await client.end();
  }
}
