import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool, type Pool } from '../../shared/db/pool.js';
import { withExecRole } from '../../shared/grants/exec-role.js';
import { probeGrants, type GrantProbeResult } from '../../shared/grants/probe.js';
import { psql, runCli } from '../support/cli.js';
import { dropDatabase, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';

// Role attributes and memberships are cluster-wide: this file gives itself an
// exec role (and helper roles) of its own, migrated into its own database,
// and drops them at the end.
const suffix = randomBytes(4).toString('hex');
const EXEC = `cutter_exec_${suffix}`;
const MIDDLE = `cutter_mid_${suffix}`;
const LOGIN = `cutter_login_${suffix}`;
const dbName = uniqueDatabaseName('grants_roles');
const url = testDatabaseUrl(dbName);
const env = { DATABASE_URL: url, CUTTER_EXEC_ROLE: EXEC };
let pool: Pool;

beforeAll(async () => {
  await migrate(url, { execRole: EXEC });
  pool = createPool(url, { max: 3, applicationName: 'cutter-test' });
});
afterAll(async () => {
  await pool?.end();
  await dropDatabase(dbName);
  const admin = new pg.Client({ connectionString: testDatabaseUrl('postgres') });
  await admin.connect();
  try {
    for (const role of [LOGIN, MIDDLE, EXEC]) {
      const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (!exists.rowCount) continue;
      await admin.query(`DROP OWNED BY "${role}"`);
      await admin.query(`DROP ROLE "${role}"`);
    }
  } finally {
    await admin.end();
  }
});

const failing = (result: GrantProbeResult) => result.rows.filter((r) => !r.ok).map((r) => `${r.kind} ${r.object} ${r.privilege}`);

/** `cutter grants package | psql`, then `cutter grants probe` must pass. */
async function applyPackageAndExpectPass(): Promise<void> {
  const pkg = await runCli(['grants', 'package'], env);
  expect(pkg.code, pkg.stderr).toBe(0);
  expect(await psql(url, pkg.stdout), pkg.stdout).toMatchObject({ code: 0, stderr: '' });
  const again = await runCli(['grants', 'probe'], env);
  expect(again.code, again.stdout + again.stderr).toBe(0);
}

describe('grant probe on a dedicated exec role', () => {
  it('passes after `cutter db migrate` with CUTTER_EXEC_ROLE', async () => {
    const probe = await runCli(['grants', 'probe'], env);
    expect(probe.code, probe.stdout + probe.stderr).toBe(0);
    expect(probe.stdout).toContain(`grant probe: role ${EXEC}, database ${dbName}`);
    expect(probe.stdout).toMatch(new RegExp(`^role\\s+${EXEC}\\s+SUPERUSER\\s+absent\\s+FALSE\\s+OK$`, 'm'));
  });

  it.each(['SUPERUSER', 'CREATEROLE', 'CREATEDB', 'BYPASSRLS', 'REPLICATION'])(
    '%s on the exec role fails the probe naming it; the package takes it away',
    async (attribute) => {
      await pool.query(`ALTER ROLE "${EXEC}" ${attribute}`);
      const run = await runCli(['grants', 'probe', '--json'], env);
      expect(run.code).toBe(1);
      const result = JSON.parse(run.stdout) as GrantProbeResult;
      expect(failing(result)).toContain(`role ${EXEC} ${attribute}`);
      expect(result.excess[0]).toBe(`ALTER ROLE "${EXEC}" NO${attribute};`);
      expect(run.stderr).toContain(`${attribute} attribute on role ${EXEC}`);
      expect(run.stderr).toMatch(/\[GRANTS_EXCESS\]$/m);
      await applyPackageAndExpectPass();
    },
  );

  it('membership in workflow_admin fails the probe naming it; the package revokes it', async () => {
    await pool.query(`GRANT workflow_admin TO "${EXEC}"`);
    const probe = await runCli(['grants', 'probe'], env);
    expect(probe.code).toBe(1);
    expect(probe.stdout).toMatch(/^membership\s+workflow_admin\s+MEMBER\s+absent\s+TRUE\s+FAIL$/m);
    expect(probe.stdout).toContain(`REVOKE "workflow_admin" FROM "${EXEC}";`);
    expect(probe.stderr).toContain('membership in workflow_admin');
    await applyPackageAndExpectPass();
  });

  it('membership in workflow_admin through another role fails too; the package cuts the link', async () => {
    await pool.query(`CREATE ROLE "${MIDDLE}" NOLOGIN`);
    await pool.query(`GRANT workflow_admin TO "${MIDDLE}"`);
    await pool.query(`GRANT "${MIDDLE}" TO "${EXEC}"`);
    const result = await probeGrants(pool, EXEC);
    expect(failing(result)).toEqual(expect.arrayContaining(['membership workflow_admin MEMBER', `membership ${MIDDLE} MEMBER`]));
    expect(result.excess).toEqual([`REVOKE "${MIDDLE}" FROM "${EXEC}";`]);
    await applyPackageAndExpectPass();
  });

  it('a login that may not SET ROLE to the exec role fails the probe; the package grants it, then execute can switch', async () => {
    // A password of its own, so this also works where the server does not trust local logins.
    const password = randomBytes(12).toString('hex');
    await pool.query(`CREATE ROLE "${LOGIN}" LOGIN NOSUPERUSER PASSWORD '${password}'`);
    const loginUrl = new URL(url);
    loginUrl.username = LOGIN;
    loginUrl.password = password;
    const asLogin = createPool(loginUrl.toString(), { max: 2, applicationName: 'cutter-test' });
    try {
      const before = await probeGrants(asLogin, EXEC);
      expect(failing(before)).toEqual([`login ${LOGIN} SET ROLE ${EXEC}`]);
      expect(before.missing).toEqual([`GRANT "${EXEC}" TO "${LOGIN}";`]);

      const client = await asLogin.connect();
      try {
        await client.query('BEGIN');
        await expect(withExecRole(client, EXEC, () => Promise.resolve())).rejects.toMatchObject({ code: 'EXEC_ROLE_DENIED' });
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }

      const pkg = await runCli(['grants', 'package'], { ...env, DATABASE_URL: loginUrl.toString() });
      expect(pkg.code, pkg.stderr).toBe(0);
      expect(await psql(url, pkg.stdout)).toMatchObject({ code: 0, stderr: '' });
      expect((await probeGrants(asLogin, EXEC)).ok).toBe(true);

      // The login itself cannot DELETE corpus rows once it has become the exec role.
      const again = await asLogin.connect();
      try {
        await again.query('BEGIN');
        const who = await withExecRole(again, EXEC, async () => (await again.query<{ u: string }>('SELECT current_user::text AS u')).rows[0]?.u);
        expect(who).toBe(EXEC);
        await expect(withExecRole(again, EXEC, () => again.query('DELETE FROM public.information_unit'))).rejects.toMatchObject({ code: '42501' });
        await again.query('ROLLBACK');
      } finally {
        again.release();
      }
    } finally {
      await asLogin.end();
    }
  });
});
