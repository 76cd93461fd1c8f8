import { readdir, readFile } from 'node:fs/promises';
import type pg from 'pg';
import { CutterError } from '../errors.js';
import { isPgError } from './errors.js';

/**
 * Functions and triggers are not numbered migrations: each lives in one file
 * (functions/<name>.sql, triggers/<trigger_name>.sql) holding its whole
 * current definition, and every migrate applies them all, after the numbered
 * migrations, in one transaction:
 *
 *  1. every function file, in name order (a LANGUAGE sql body is checked
 *     when it is created, so one calling another cutter function comes after
 *     it; PL/pgSQL bodies are resolved when they run); one whose signature or
 *     return type changed cannot be replaced (42P13, 42809): the transaction
 *     starts over with that name's overloads dropped first;
 *  2. every trigger file (CREATE OR REPLACE TRIGGER, PostgreSQL 14+);
 *  3. triggers on governed tables calling a cutter_governance function, and
 *     functions of cutter_governance, that no file wrote in this transaction
 *     are dropped: a catalog row written by this transaction has
 *     xmin = pg_current_xact_id(). No savepoints, since a subtransaction
 *     writes under an xid of its own; never CASCADE, so anything else that
 *     depends on a stale function stops the migrate instead of vanishing.
 */

const FUNCTIONS_DIR = new URL('./functions/', import.meta.url);
const TRIGGERS_DIR = new URL('./triggers/', import.meta.url);
const SCHEMA = 'cutter_governance';

export interface RoutineFile {
  /** The function's or the trigger's name, which is the file's. */
  name: string;
  sql: string;
}

export interface FunctionFiles {
  functions: RoutineFile[];
  triggers: RoutineFile[];
}

export interface FunctionFilesResult {
  functions: number;
  triggers: number;
  /** Functions dropped first because their signature or return type changed. */
  recreated: string[];
  /** Functions and triggers no file defines any more. */
  dropped: string[];
}

/** Reads and checks the function and trigger files: one definition each, named as its file. */
export async function loadFunctionFiles(dirs: { functions: URL; triggers: URL } = { functions: FUNCTIONS_DIR, triggers: TRIGGERS_DIR }): Promise<FunctionFiles> {
  return {
    functions: await loadDir(dirs.functions, (name) => `CREATE OR REPLACE FUNCTION ${SCHEMA}.${name}(`),
    triggers: await loadDir(dirs.triggers, (name) => `CREATE OR REPLACE TRIGGER ${name} `),
  };
}

/** CREATE [OR REPLACE] FUNCTION / PROCEDURE / [CONSTRAINT] TRIGGER outside comments. */
export const DEFINITION = /\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|TRIGGER|CONSTRAINT\s+TRIGGER)\s+([a-z_][a-z0-9_.]*)/gi;

/** The SQL without its -- comments (good enough to look for statements). */
export function withoutComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, '');
}

async function loadDir(dir: URL, opening: (name: string) => string): Promise<RoutineFile[]> {
  const files: RoutineFile[] = [];
  for (const file of (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort()) {
    const name = /^([a-z_][a-z0-9_]*)\.sql$/.exec(file)?.[1];
    if (!name) throw new CutterError('FUNCTION_FILE', `${file} is not named <name>.sql`);
    const sql = await readFile(new URL(file, dir), 'utf8');
    const code = withoutComments(sql);
    const starts = code.split('\n').some((line) => line.startsWith(opening(name)));
    if ((code.match(DEFINITION) ?? []).length !== 1 || !starts) {
      throw new CutterError('FUNCTION_FILE', `${file} must hold exactly one definition, a line starting ${opening(name)}`);
    }
    files.push({ name, sql });
  }
  return files;
}

/** Applies every function and trigger file and drops what they no longer define; the caller holds the migration lock. */
export async function applyFunctionFiles(client: pg.ClientBase, files: FunctionFiles): Promise<FunctionFilesResult> {
  const version = await client.query<{ num: string; version: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
  );
  const server = version.rows[0];
  if (server && Number(server.num) < 140000) {
    throw new CutterError('POSTGRES_TOO_OLD', `PostgreSQL ${server.version} has no CREATE OR REPLACE TRIGGER; cutter needs PostgreSQL 14 or newer`);
  }
  const dropFirst = new Set<string>();
  for (;;) {
    await client.query('BEGIN');
    let outcome: Awaited<ReturnType<typeof applyOnce>>;
    try {
      outcome = await applyOnce(client, files, dropFirst);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    if (typeof outcome === 'string') {
      // Each round adds a name, so this ends after at most one round per file.
      await client.query('ROLLBACK');
      dropFirst.add(outcome);
      continue;
    }
    await client.query('COMMIT');
    return { functions: files.functions.length, triggers: files.triggers.length, recreated: [...dropFirst], dropped: outcome };
  }
}

/** One attempt: the names dropped as stale, or the name of a function that must be dropped first. */
async function applyOnce(client: pg.ClientBase, files: FunctionFiles, dropFirst: ReadonlySet<string>): Promise<string[] | string> {
  for (const f of files.functions) {
    try {
      if (dropFirst.has(f.name)) await dropOverloads(client, f.name);
      await client.query(f.sql);
    } catch (err) {
      if ((isPgError(err, '42P13') || isPgError(err, '42809')) && !dropFirst.has(f.name)) return f.name;
      throw failed(`function file ${f.name}.sql`, err);
    }
  }
  for (const t of files.triggers) {
    try {
      await client.query(t.sql);
    } catch (err) {
      throw failed(`trigger file ${t.name}.sql`, err);
    }
  }
  const dropped: string[] = [];
  const staleTriggers = await client.query<{ trigger: string; name: string }>(
    `SELECT quote_ident(t.tgname) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS trigger,
            t.tgname || ' on ' || n.nspname || '.' || c.relname AS name
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_proc p ON p.oid = t.tgfoid
      WHERE NOT t.tgisinternal AND n.nspname IN ('public', $1) AND p.pronamespace = $1::regnamespace
        AND NOT (t.xmin = pg_current_xact_id()::xid)
      ORDER BY 2`,
    [SCHEMA],
  );
  for (const t of staleTriggers.rows) {
    await client.query(`DROP TRIGGER ${t.trigger}`);
    dropped.push(`trigger ${t.name}`);
  }
  for (const f of await routines(client, 'stale')) {
    await client.query(`DROP ROUTINE ${f.signature}`);
    dropped.push(`function ${f.signature}`);
  }
  return dropped;
}

/** A name's overloads go, to be created again by its file (a trigger calling one stops this: 2BP01). */
async function dropOverloads(client: pg.ClientBase, name: string): Promise<void> {
  for (const f of await routines(client, { name })) await client.query(`DROP ROUTINE ${f.signature}`);
}

/** The schema's functions (extension members left out) with quoted signatures: those named `name`, or those this transaction did not write. */
async function routines(client: pg.ClientBase, which: { name: string } | 'stale'): Promise<{ signature: string }[]> {
  const { rows } = await client.query<{ signature: string }>(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = $1 AND ($2::text IS NULL OR p.proname = $2) AND ($3 = false OR NOT (p.xmin = pg_current_xact_id()::xid))
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
      ORDER BY 1`,
    [SCHEMA, which === 'stale' ? null : which.name, which === 'stale'],
  );
  return rows;
}

function failed(what: string, err: unknown): CutterError {
  return new CutterError('FUNCTION_FAILED', `${what} failed: ${(err as Error).message}`, { cause: err });
}
