import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../shared/db/migrate.js';
import { dropDatabase, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';

const created: string[] = [];
afterAll(async () => {
  for (const name of created) await dropDatabase(name);
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

const SCHEMA_SHAPE = `
  SELECT table_schema || '.' || table_name || '.' || column_name AS col
    FROM information_schema.columns
   WHERE table_schema IN ('public', 'cutter_governance') ORDER BY 1`;

describe('cutter db migrate', () => {
  it('creates a missing database, applies every migration, and a second run changes nothing', async () => {
    const name = uniqueDatabaseName('migrate');
    created.push(name);
    const url = testDatabaseUrl(name);
    const first = await migrate(url, { execRole: 'cutter_exec' });
    expect(first.databaseCreated).toBe(true);
    const files = (await loadMigrations()).map((m) => m.name);
    expect(files.slice(0, 3)).toEqual(['001_corpus.sql', '002_governance.sql', '003_audit.sql']);
    expect(first.applied).toEqual(files);
    const shapeBefore = await query<{ col: string }>(url, SCHEMA_SHAPE);
    expect(shapeBefore.map((r) => r.col)).toEqual(
      expect.arrayContaining([
        'public.information_unit.current_version',
        'public.unit_version.body_sha256',
        'public.iu_lifecycle_log.from_state',
        'cutter_governance.review_decision.nonce',
        'cutter_governance.audit_event.prev_hash',
      ]),
    );

    const second = await migrate(url, { execRole: 'cutter_exec' });
    expect(second).toEqual({ databaseCreated: false, applied: [], alreadyApplied: files.length });
    expect(await query<{ col: string }>(url, SCHEMA_SHAPE)).toEqual(shapeBefore);
  });

  it('two concurrent runs on an empty server end with one schema and one ledger', async () => {
    const name = uniqueDatabaseName('migrate_race');
    created.push(name);
    const url = testDatabaseUrl(name);
    const [a, b] = await Promise.all([
      migrate(url, { execRole: 'cutter_exec' }),
      migrate(url, { execRole: 'cutter_exec' }),
    ]);
    const files = await loadMigrations();
    expect([a.applied.length, b.applied.length].sort((x, y) => x - y)).toEqual([0, files.length]);
    const ledger = await query<{ version: number }>(url, 'SELECT version FROM cutter_governance.schema_migration ORDER BY 1');
    expect(ledger.map((r) => r.version)).toEqual(files.map((f) => f.version));
  });

  it('tolerates the roles already existing from another database (and a custom exec role name)', async () => {
    const name = uniqueDatabaseName('migrate_role');
    created.push(name);
    const role = `cutter_exec_${name.slice(-8)}`;
    const url = testDatabaseUrl(name);
    await migrate(url, { execRole: role });
    const roles = await query<{ rolname: string }>(
      url,
      `SELECT rolname FROM pg_roles WHERE rolname IN ('workflow_admin', '${role}') ORDER BY 1`,
    );
    expect(roles.map((r) => r.rolname)).toEqual([role, 'workflow_admin'].sort());
    await query(url, `DROP OWNED BY ${role}`);
    await dropDatabase(name);
    created.pop();
    await query(testDatabaseUrl('postgres'), `DROP ROLE ${role}`);
  });

  it('gives the schemas to workflow_admin and the exec role no DELETE, TRUNCATE or CREATE', async () => {
    const name = uniqueDatabaseName('migrate_owner');
    created.push(name);
    const url = testDatabaseUrl(name);
    await migrate(url, { execRole: 'cutter_exec' });
    const owners = await query<{ owner: string }>(
      url,
      `SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'cutter_governance') AND c.relkind = 'r'`,
    );
    expect(owners).toEqual([{ owner: 'workflow_admin' }]);
    const excess = await query<{ obj: string }>(
      url,
      `SELECT n.nspname || '.' || c.relname || ':' || p.priv AS obj
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY['DELETE', 'TRUNCATE']) AS p(priv)
        WHERE n.nspname IN ('public', 'cutter_governance') AND c.relkind = 'r'
          AND has_table_privilege('cutter_exec', c.oid, p.priv)
       UNION ALL
       SELECT s || ':CREATE' FROM unnest(ARRAY['public', 'cutter_governance']) s
        WHERE has_schema_privilege('cutter_exec', s, 'CREATE')`,
    );
    expect(excess).toEqual([]);
  });
});
