import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOVERNED_SCHEMAS, REQUIRED_GRANTS } from '../../shared/grants/matrix.js';
import { grantStatement, revokeStatement } from '../../shared/grants/package.js';
import { probeGrants, type GrantProbeResult } from '../../shared/grants/probe.js';
import { psql, runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

// Grants are per database, so this file changes them freely in its own clone
// while other files use the same cluster-wide role cutter_exec.
const EXEC = 'cutter_exec';

let db: TestDatabase;
let env: Record<string, string>;
beforeAll(async () => {
  db = await createTestDatabase('grants_probe');
  env = { DATABASE_URL: db.url };
});
afterAll(async () => {
  await db.drop();
});

/** `cutter grants package | psql`, then the probe must pass again. */
async function applyPackageAndExpectPass(): Promise<void> {
  const pkg = await runCli(['grants', 'package'], env);
  expect(pkg.code, pkg.stderr).toBe(0);
  const applied = await psql(db.url, pkg.stdout);
  expect(applied, pkg.stdout).toMatchObject({ code: 0, stderr: '' });
  const again = await runCli(['grants', 'probe'], env);
  expect(again.code, again.stdout + again.stderr).toBe(0);
  expect(again.stdout).toMatch(/^PASS: all \d+ rows hold$/m);
}

async function probeJson(): Promise<{ code: number; result: GrantProbeResult & { package: string }; stderr: string }> {
  const run = await runCli(['grants', 'probe', '--json'], env);
  return { code: run.code, result: JSON.parse(run.stdout) as GrantProbeResult & { package: string }, stderr: run.stderr };
}

const failing = (result: GrantProbeResult) => result.rows.filter((r) => !r.ok).map((r) => `${r.kind} ${r.object} ${r.privilege}`);

describe('grant probe on a freshly migrated database', () => {
  it('passes every row: each required grant held, no write (INSERT, UPDATE, DELETE, TRUNCATE) on any governed table, no CREATE', async () => {
    const result = await probeGrants(db.pool, EXEC);
    expect(failing(result)).toEqual([]);
    expect(result).toMatchObject({ ok: true, role: EXEC, missing: [], excess: [] });
    for (const g of REQUIRED_GRANTS) {
      expect(result.rows).toContainEqual({ object: g.object, kind: g.kind, privilege: g.privilege, expected: 'held', actual: true, ok: true });
    }
    const tables = await db.pool.query<{ t: string }>(
      `SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname = ANY($1) ORDER BY 1`,
      [[...GOVERNED_SCHEMAS]],
    );
    expect(tables.rows.length).toBeGreaterThan(10);
    for (const { t } of tables.rows) {
      for (const privilege of ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) {
        expect(result.rows).toContainEqual({ object: t, kind: 'table', privilege, expected: 'absent', actual: false, ok: true });
      }
    }
    for (const schema of GOVERNED_SCHEMAS) {
      expect(result.rows).toContainEqual({ object: schema, kind: 'schema', privilege: 'CREATE', expected: 'absent', actual: false, ok: true });
    }
    for (const privilege of ['SUPERUSER', 'CREATEROLE', 'CREATEDB', 'BYPASSRLS']) {
      expect(result.rows).toContainEqual({ object: EXEC, kind: 'role', privilege, expected: 'absent', actual: false, ok: true });
    }
    expect(result.rows).toContainEqual({ object: 'workflow_admin', kind: 'membership', privilege: 'MEMBER', expected: 'absent', actual: false, ok: true });
  });

  it('`cutter grants probe` prints every row TRUE/FALSE with OK and exits 0; the package is one comment line', async () => {
    const probe = await runCli(['grants', 'probe'], env);
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.stdout).toMatch(/^kind\s+object\s+privilege\s+expected\s+actual\s+result$/m);
    expect(probe.stdout).toMatch(/^function\s+cutter_governance\.apply_plan\(text,text\)\s+EXECUTE\s+held\s+TRUE\s+OK$/m);
    // The exec role writes the corpus only through apply_plan: no write grant of its own on any table.
    expect(probe.stdout).toMatch(/^table\s+public\.information_unit\s+UPDATE\s+absent\s+FALSE\s+OK$/m);
    expect(probe.stdout).toMatch(/^table\s+public\.information_unit\s+DELETE\s+absent\s+FALSE\s+OK$/m);
    expect(probe.stdout).not.toMatch(/FAIL/);
    const rows = probe.stdout.split('\n').filter((l) => / (OK|FAIL)$/.test(l));
    expect(probe.stdout).toContain(`PASS: all ${rows.length} rows hold`);

    const json = await probeJson();
    expect(json.code).toBe(0);
    expect(Object.keys(json.result).sort()).toEqual(['database', 'excess', 'missing', 'ok', 'package', 'role', 'rows']);
    expect(json.result.rows).toHaveLength(rows.length);
    expect(Object.keys(json.result.rows[0] ?? {}).sort()).toEqual(['actual', 'expected', 'kind', 'object', 'ok', 'privilege']);

    const pkg = await runCli(['grants', 'package'], env);
    expect(pkg.code).toBe(0);
    expect(pkg.stdout).toBe(`-- cutter grant package for role "${EXEC}" on database "${db.name}": nothing is missing and nothing is excess\n`);
  });
});

describe('revoking any one required grant', () => {
  it.each(REQUIRED_GRANTS.map((g) => [`${g.privilege} on ${g.kind} ${g.object}`, g] as const))(
    'fails the probe (%s) and the printed package applied with psql makes it pass',
    async (_name, grant) => {
      await db.pool.query(revokeStatement(grant, EXEC));
      const { code, result, stderr } = await probeJson();
      expect(code).toBe(1);
      expect(result.ok).toBe(false);
      expect(failing(result)).toEqual([`${grant.kind} ${grant.object} ${grant.privilege}`]);
      expect(result.missing).toEqual([grantStatement(grant, EXEC)]);
      expect(result.excess).toEqual([]);
      expect(stderr).toMatch(/\[GRANTS_MISSING\]$/m);
      expect(stderr).toContain(`${grant.privilege} on ${grant.kind} ${grant.object}`);
      await applyPackageAndExpectPass();
    },
  );
});

describe('privileges beyond the matrix', () => {
  it('DELETE on information_unit fails the probe naming it; the package revokes it', async () => {
    await db.pool.query(`GRANT DELETE ON public.information_unit TO ${EXEC}`);
    const probe = await runCli(['grants', 'probe'], env);
    expect(probe.code).toBe(1);
    expect(probe.stdout).toMatch(/^table\s+public\.information_unit\s+DELETE\s+absent\s+TRUE\s+FAIL$/m);
    expect(probe.stdout).toMatch(/^FAIL: 1 of \d+ rows fail$/m);
    expect(probe.stdout).toContain(`REVOKE DELETE ON TABLE "public"."information_unit" FROM "${EXEC}";`);
    expect(probe.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^cutter: exec role "cutter_exec" holds what the deployment matrix forbids: DELETE on table public\.information_unit; .*\[GRANTS_EXCESS\]$/),
    ]);
    await applyPackageAndExpectPass();
  });

  // [what, the SQL that grants it, the failing row, the one statement that takes it back]
  const cases: [string, string, string, string][] = [
    ['UPDATE on one column of audit_event',
      'GRANT UPDATE (actor) ON cutter_governance.audit_event TO cutter_exec',
      'table cutter_governance.audit_event UPDATE',
      'REVOKE UPDATE ON TABLE "cutter_governance"."audit_event" FROM "cutter_exec";'],
    ['TRUNCATE on run through PUBLIC',
      'GRANT TRUNCATE ON cutter_governance.run TO PUBLIC',
      'table cutter_governance.run TRUNCATE',
      'REVOKE TRUNCATE ON TABLE "cutter_governance"."run" FROM PUBLIC;'],
    ['CREATE on schema public',
      'GRANT CREATE ON SCHEMA public TO cutter_exec',
      'schema public CREATE',
      'REVOKE CREATE ON SCHEMA "public" FROM "cutter_exec";'],
    ['CREATE on the database',
      'GRANT CREATE ON DATABASE :db TO cutter_exec',
      'database :db CREATE',
      'REVOKE CREATE ON DATABASE ":db" FROM "cutter_exec";'],
    ['SELECT on review_decision',
      'GRANT SELECT ON cutter_governance.review_decision TO cutter_exec',
      'table cutter_governance.review_decision SELECT',
      'REVOKE SELECT ON TABLE "cutter_governance"."review_decision" FROM "cutter_exec";'],
    ['setval on a sequence',
      'GRANT UPDATE ON SEQUENCE public.information_unit_id_seq TO cutter_exec',
      'sequence public.information_unit_id_seq UPDATE',
      'REVOKE UPDATE ON SEQUENCE "public"."information_unit_id_seq" FROM "cutter_exec";'],
    ['EXECUTE on the audit trigger function',
      'GRANT EXECUTE ON FUNCTION cutter_governance.audit_refuse_change() TO PUBLIC',
      'function cutter_governance.audit_refuse_change() EXECUTE',
      'REVOKE EXECUTE ON FUNCTION "cutter_governance"."audit_refuse_change"() FROM PUBLIC;'],
  ];
  it.each(cases)('%s fails the probe naming it; the package revokes it', async (_name, grantSql, row, revoke) => {
    const withDb = (text: string, quoted: boolean) => text.replace(':db', quoted ? `"${db.name}"` : db.name);
    await db.pool.query(withDb(grantSql, true));
    const { code, result } = await probeJson();
    expect(code).toBe(1);
    expect(failing(result)).toEqual([withDb(row, false)]);
    expect(result.missing).toEqual([]);
    expect(result.excess).toEqual([withDb(revoke, false)]);
    await applyPackageAndExpectPass();
  });

  it('ownership of unit_version fails the probe; the package hands it back to workflow_admin', async () => {
    await db.pool.query(`ALTER TABLE public.unit_version OWNER TO ${EXEC}`);
    const { code, result } = await probeJson();
    expect(code).toBe(1);
    expect(failing(result)).toEqual(
      expect.arrayContaining(['table public.unit_version OWNER', 'table public.unit_version INSERT', 'table public.unit_version DELETE', 'table public.unit_version TRUNCATE']),
    );
    expect(result.excess).toEqual(['ALTER TABLE "public"."unit_version" OWNER TO "workflow_admin";']);
    expect(result.missing).toEqual([]);
    await applyPackageAndExpectPass();
  });
});

describe('the probe itself', () => {
  const CATALOG = `
    SELECT (SELECT array_agg(c.oid || ':' || c.relowner || ':' || coalesce(c.relacl::text, '-') ORDER BY c.oid) FROM pg_class c) AS rel,
           (SELECT array_agg(a.attrelid || '.' || a.attnum || ':' || a.attacl::text ORDER BY a.attrelid, a.attnum) FROM pg_attribute a WHERE a.attacl IS NOT NULL) AS col,
           (SELECT array_agg(n.oid || ':' || coalesce(n.nspacl::text, '-') ORDER BY n.oid) FROM pg_namespace n) AS nsp,
           (SELECT array_agg(p.oid || ':' || coalesce(p.proacl::text, '-') ORDER BY p.oid) FROM pg_proc p) AS fn,
           (SELECT coalesce(datacl::text, '-') FROM pg_database WHERE datname = current_database()) AS dat,
           -- Roles are cluster-wide and other test files change their own roles
           -- concurrently: compare the roles this probe could touch.
           (SELECT array_agg(row(r.*)::text ORDER BY r.oid) FROM pg_roles r
             WHERE r.rolname IN ('cutter_exec', 'workflow_admin', current_user)) AS roles,
           (SELECT array_agg(row(m.*)::text ORDER BY m.roleid, m.member) FROM pg_auth_members m
             WHERE m.roleid IN (SELECT oid FROM pg_roles WHERE rolname IN ('cutter_exec', 'workflow_admin', current_user))
                OR m.member IN (SELECT oid FROM pg_roles WHERE rolname IN ('cutter_exec', 'workflow_admin', current_user))) AS members`;

  it('never changes anything, even when it fails: read-only transaction, no transaction id, catalog identical', async () => {
    await db.pool.query(`GRANT DELETE, TRUNCATE ON public.information_unit TO ${EXEC}`);
    await db.pool.query(`REVOKE SELECT ON public.unit_version FROM ${EXEC}`);
    const before = (await db.pool.query(CATALOG)).rows[0] as unknown;

    const client = await db.pool.connect();
    try {
      await client.query('BEGIN READ ONLY');
      const result = await probeGrants(client, EXEC);
      expect(result.ok).toBe(false);
      const xid = await client.query<{ xid: string | null }>('SELECT pg_current_xact_id_if_assigned()::text AS xid');
      expect(xid.rows[0]?.xid).toBeNull();
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect((await runCli(['grants', 'probe'], env)).code).toBe(1);
    expect((await runCli(['grants', 'package'], env)).code).toBe(0);
    expect((await db.pool.query(CATALOG)).rows[0]).toEqual(before);
    await applyPackageAndExpectPass();
  });

  it('a role that does not exist is its own failure (EXEC_ROLE_MISSING)', async () => {
    await expect(probeGrants(db.pool, 'cutter_exec_never_created')).rejects.toMatchObject({ code: 'EXEC_ROLE_MISSING' });
    const probe = await runCli(['grants', 'probe'], { ...env, CUTTER_EXEC_ROLE: 'cutter_exec_never_created' });
    expect(probe.code).toBe(1);
    expect(probe.stdout).toBe('');
    expect(probe.stderr).toMatch(/^cutter: the exec role "cutter_exec_never_created" does not exist: .*\[EXEC_ROLE_MISSING\]$/m);
  });

  it('a matrix object missing from the database stops the probe (GRANTS_OBJECT_MISSING) instead of guessing', async () => {
    const bare = await createTestDatabase('grants_bare', { migrated: false });
    try {
      await expect(probeGrants(bare.pool, EXEC)).rejects.toMatchObject({
        code: 'GRANTS_OBJECT_MISSING',
        message: expect.stringContaining('run `cutter db migrate` first') as unknown,
      });
    } finally {
      await bare.drop();
    }
  });
});
