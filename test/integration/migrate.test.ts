import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { applyFunctionFiles, type FunctionFiles, loadFunctionFiles } from '../../shared/db/function-files.js';
import { AMENDED, SQUASHED } from '../../shared/db/migration-history.js';
import { loadMigrations } from '../../shared/db/numbered-migrations.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { migrateOldHead } from '../fixtures/old-head.js';
import { dropDatabase, queryOnce, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';

/** The names of this cutter's numbered migrations after a version, in order. */
async function migrationsAfter(version: number): Promise<string[]> {
  return (await loadMigrations()).filter((m) => m.version > version).map((m) => m.name);
}

const created: string[] = [];
afterAll(async () => {
  for (const name of created) await dropDatabase(name);
});

function newDatabase(label: string): { name: string; url: string } {
  const name = uniqueDatabaseName(label);
  created.push(name);
  return { name, url: testDatabaseUrl(name) };
}

const query = queryOnce;

/**
 * The schema as the real pg_dump prints it (owners and grants included),
 * without what legitimately differs between two dumps: comment lines (the
 * header), SET lines, psql's per-dump \restrict key, blank lines.
 */
async function schemaDump(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)('pg_dump', ['--schema-only', `--dbname=${url}`], { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('--') && !/^(SET |SELECT pg_catalog\.set_config|\\(un)?restrict )/.test(line))
    .join('\n');
}

const ledger = (url: string) =>
  query<{ version: number; name: string; sha256: string }>(url, 'SELECT version, name, sha256 FROM cutter_governance.schema_migration ORDER BY version');

const SCHEMA_SHAPE = `
  SELECT table_schema || '.' || table_name || '.' || column_name AS col
    FROM information_schema.columns
   WHERE table_schema IN ('public', 'cutter_governance') ORDER BY 1`;

const FUNCTIONS = `
  SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS fn
    FROM pg_proc p WHERE p.pronamespace = 'cutter_governance'::regnamespace ORDER BY 1`;

describe('cutter db migrate', () => {
  it('creates a missing database, applies every migration and function file, and a second run changes nothing', async () => {
    const { url } = newDatabase('migrate');
    const first = await migrate(url, { execRole: 'cutter_exec' });
    expect(first.databaseCreated).toBe(true);
    const files = (await loadMigrations()).map((m) => m.name);
    expect(files.slice(0, 3)).toEqual(['001_corpus.sql', '002_governance.sql', '003_audit.sql']);
    expect(first.applied).toEqual(files);
    const { functions, triggers } = await loadFunctionFiles();
    expect(first.routines).toEqual({ functions: functions.length, triggers: triggers.length, recreated: [], dropped: [] });
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
    const dumpBefore = await schemaDump(url);

    const second = await migrate(url, { execRole: 'cutter_exec' });
    expect(second).toEqual({
      databaseCreated: false,
      applied: [],
      alreadyApplied: files.length,
      amended: [],
      squashed: null,
      routines: { functions: functions.length, triggers: triggers.length, recreated: [], dropped: [] },
    });
    expect(await query<{ col: string }>(url, SCHEMA_SHAPE)).toEqual(shapeBefore);
    expect(await schemaDump(url)).toEqual(dumpBefore);
  });

  it('defines exactly the function files, each once', async () => {
    const { url } = newDatabase('migrate_fns');
    await migrate(url, { execRole: 'cutter_exec' });
    const names = (await query<{ fn: string }>(url, FUNCTIONS)).map((r) => r.fn.replace(/\(.*/, '')).sort();
    const { functions } = await loadFunctionFiles();
    expect(names).toEqual(functions.map((f) => f.name).sort());
  });

  it('carries a database at the old HEAD (afc549b) over to exactly the schema and ledger of a fresh one', async () => {
    const old = newDatabase('migrate_oldhead');
    await migrateOldHead(old.url, { execRole: 'cutter_exec' });
    expect((await ledger(old.url)).map((r) => r.version)).toEqual([1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    const result = await migrate(old.url, { execRole: 'cutter_exec' });
    // Every migration numbered after the old HEAD's last (019), whatever later ones exist.
    expect(result.applied).toEqual(await migrationsAfter(19));
    expect(result.amended).toEqual([
      `002_governance.sql: ${AMENDED[0]?.reason ?? ''}`,
      `003_audit.sql: ${AMENDED[1]?.reason ?? ''}`,
    ]);
    expect(result.squashed).toEqual({ replaced: SQUASHED.replaced.map((r) => r.name), by: ['010_staging_checks_indexes.sql'] });
    expect(result.routines.recreated).toEqual([]);
    expect(result.routines.dropped).toEqual([
      'function cutter_governance.disarm_execution(p_actor text)',
      'function cutter_governance.gate_handoff(p_run_id text)',
      'function cutter_governance.open_gate(p_run_id text, p_ids bigint[], p_actor text, p_audit_detail jsonb, p_phase_summary jsonb, p_claimed boolean, p_started_at timestamp with time zone, p_judged jsonb)',
      // Rejections (issue 25) gave store_approval its p_reason: a new signature, so the old one is stale.
      'function cutter_governance.store_approval(p_run_id text, p_gate text, p_key_id text, p_key_name text, p_document text, p_signature text, p_nonce text, p_plan_sha256 text, p_signed_utc timestamp with time zone, p_expires_utc timestamp with time zone, p_actor text, p_audit_detail jsonb)',
    ]);

    const fresh = newDatabase('migrate_fresh');
    await migrate(fresh.url, { execRole: 'cutter_exec' });
    expect(await schemaDump(old.url)).toEqual(await schemaDump(fresh.url));
    expect(await ledger(old.url)).toEqual(await ledger(fresh.url));

    // And from there on it is an ordinary database.
    const again = await migrate(old.url, { execRole: 'cutter_exec' });
    expect([again.applied, again.amended, again.squashed, again.routines.dropped]).toEqual([[], [], null, []]);
  });

  it('amends 002 and 003 and applies the rest on a database migrated only to 003 by the old cutter', async () => {
    const old = newDatabase('migrate_003');
    await migrateOldHead(old.url, { execRole: 'cutter_exec', only: (v) => v <= 3 });
    const result = await migrate(old.url, { execRole: 'cutter_exec' });
    expect(result.amended).toHaveLength(2);
    expect(result.squashed).toBeNull();
    expect(result.applied).toEqual(await migrationsAfter(3));
    const fresh = newDatabase('migrate_003_fresh');
    await migrate(fresh.url, { execRole: 'cutter_exec' });
    expect(await schemaDump(old.url)).toEqual(await schemaDump(fresh.url));
    expect(await ledger(old.url)).toEqual(await ledger(fresh.url));
  });

  it('refuses a database holding only part of 010-019, and changes nothing', async () => {
    const old = newDatabase('migrate_part');
    await migrateOldHead(old.url, { execRole: 'cutter_exec', only: (v) => v <= 15 });
    const dump = await schemaDump(old.url);
    const rows = await ledger(old.url);
    await expect(migrate(old.url, { execRole: 'cutter_exec' })).rejects.toMatchObject({
      code: 'MIGRATION_SQUASHED',
      message: expect.stringMatching(/016_gate_opens_in_one_commit\.sql.*afc549b/) as unknown,
    });
    expect(await schemaDump(old.url)).toEqual(dump);
    expect(await ledger(old.url)).toEqual(rows);
  });

  it('refuses all of 010-019 when one recorded hash is not the released one', async () => {
    const old = newDatabase('migrate_hash');
    await migrateOldHead(old.url, { execRole: 'cutter_exec' });
    await query(old.url, `UPDATE cutter_governance.schema_migration SET sha256 = repeat('0', 64) WHERE version = 17`);
    const rows = await ledger(old.url);
    await expect(migrate(old.url, { execRole: 'cutter_exec' })).rejects.toMatchObject({ code: 'MIGRATION_SQUASHED' });
    expect(await ledger(old.url)).toEqual(rows);
  });

  it('still refuses an edited or an unknown migration', async () => {
    const { url } = newDatabase('migrate_edited');
    await migrate(url, { execRole: 'cutter_exec' });
    await query(url, `UPDATE cutter_governance.schema_migration SET sha256 = repeat('0', 64) WHERE version = 3`);
    await expect(migrate(url, { execRole: 'cutter_exec' })).rejects.toMatchObject({ code: 'MIGRATION_EDITED' });
    await query(url, `UPDATE cutter_governance.schema_migration SET sha256 = $1 WHERE version = 3`, [AMENDED[1]?.oldSha256]);
    await query(url, `INSERT INTO cutter_governance.schema_migration (version, name, sha256) VALUES (999, '999_future.sql', repeat('0', 64))`);
    await expect(migrate(url, { execRole: 'cutter_exec' })).rejects.toMatchObject({ code: 'MIGRATION_UNKNOWN' });
  });

  it('two concurrent runs on an empty server end with one schema and one ledger', async () => {
    const { url } = newDatabase('migrate_race');
    const [a, b] = await Promise.all([migrate(url, { execRole: 'cutter_exec' }), migrate(url, { execRole: 'cutter_exec' })]);
    const files = await loadMigrations();
    expect([a.applied.length, b.applied.length].sort((x, y) => x - y)).toEqual([0, files.length]);
    const rows = await query<{ version: number }>(url, 'SELECT version FROM cutter_governance.schema_migration ORDER BY 1');
    expect(rows.map((r) => r.version)).toEqual(files.map((f) => f.version));
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
    const { url } = newDatabase('migrate_owner');
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

describe('function files', () => {
  /** The shipped files with one function's file replaced (or added). */
  async function filesWith(name: string, sql: string): Promise<FunctionFiles> {
    const files = await loadFunctionFiles();
    return { functions: [...files.functions.filter((f) => f.name !== name), { name, sql }], triggers: files.triggers };
  }

  async function applyOn(url: string, files: FunctionFiles): Promise<Awaited<ReturnType<typeof applyFunctionFiles>>> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await applyFunctionFiles(client, files);
    } finally {
      await client.end();
    }
  }

  it('recreate a function whose return type changed', async () => {
    const { url } = newDatabase('fnfiles_sig');
    await migrate(url, { execRole: 'cutter_exec' });
    const files = await filesWith(
      'run_in_flight',
      `CREATE OR REPLACE FUNCTION cutter_governance.run_in_flight(p_status text)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN p_status = 'running' THEN 1 ELSE 0 END $$;`,
    );
    const result = await applyOn(url, files);
    expect(result.recreated).toEqual(['run_in_flight']);
    expect(result.dropped).toEqual([]);
    expect(await query(url, `SELECT cutter_governance.run_in_flight('running') AS n`)).toEqual([{ n: 1 }]);
  });

  it('drop functions and triggers that no file defines, and leave other schemas alone', async () => {
    const { url } = newDatabase('fnfiles_stale');
    await migrate(url, { execRole: 'cutter_exec' });
    await query(
      url,
      `CREATE FUNCTION cutter_governance.leftover(x int) RETURNS int LANGUAGE sql AS $$ SELECT x $$;
       CREATE FUNCTION cutter_governance.leftover_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
       CREATE TRIGGER leftover_on_unit BEFORE INSERT ON public.information_unit FOR EACH ROW EXECUTE FUNCTION cutter_governance.leftover_trigger();
       CREATE FUNCTION public.not_ours() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;`,
    );
    const result = await applyOn(url, await loadFunctionFiles());
    expect(result.dropped).toEqual([
      'trigger leftover_on_unit on public.information_unit',
      'function cutter_governance.leftover(x integer)',
      'function cutter_governance.leftover_trigger()',
    ]);
    expect(await query(url, `SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'not_ours'`)).toEqual([{ n: 1 }]);
  });

  it('refuse a body that does not parse, and change nothing', async () => {
    const { url } = newDatabase('fnfiles_bad');
    await migrate(url, { execRole: 'cutter_exec' });
    const before = await query<{ fn: string }>(url, FUNCTIONS);
    const files = await filesWith(
      'broken',
      `CREATE OR REPLACE FUNCTION cutter_governance.broken() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1 END $$;`,
    );
    await expect(applyOn(url, files)).rejects.toMatchObject({ code: 'FUNCTION_FAILED', message: expect.stringContaining('broken.sql') as unknown });
    expect(await query<{ fn: string }>(url, FUNCTIONS)).toEqual(before);
  });
});
