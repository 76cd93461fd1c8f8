import { ident } from '../db/pool.js';
import { CutterError } from '../errors.js';
import {
  ADMIN_ROLE,
  FORBIDDEN_ROLE_ATTRIBUTES,
  FORBIDDEN_TABLE_PRIVILEGES,
  GOVERNED_SCHEMAS,
  REQUIRED_GRANTS,
  ROLE_ATTRIBUTE_KEYWORD,
  type RequiredGrant,
  SEQUENCE_PRIVILEGES,
  TABLE_PRIVILEGES,
} from './matrix.js';
import {
  type ObjectRef,
  alterOwnerStatement,
  dropAttributeStatement,
  grantMembershipStatement,
  grantStatement,
  revokeMembershipStatement,
  revokeOnStatement,
} from './package.js';
import {
  type Db,
  type ExecRoleFacts,
  type PrivilegeFact,
  type RelationFact,
  type RequiredRef,
  readDatabase,
  readExecRole,
  readFunctions,
  readRelations,
  readRequired,
  readSchemas,
} from './probe-queries.js';

/**
 * The grant probe (phase grant-probe): the deployment grant matrix checked
 * live for the exec role, in both directions. Required rows must be granted
 * to the role itself: one it only has through PUBLIC, a membership, ownership
 * or superuser would vanish when that is put right. Forbidden rows (DELETE, TRUNCATE, CREATE, ownership,
 * dangerous attributes, membership in workflow_admin) and any privilege
 * beyond the matrix must be absent, whatever their source. It only reads the
 * catalog; the fix is the package, applied by a human as workflow_admin.
 */

export interface GrantProbeRow {
  object: string;
  kind: string;
  privilege: string;
  expected: 'held' | 'absent';
  actual: boolean;
  ok: boolean;
}

export interface GrantProbeResult {
  ok: boolean;
  role: string;
  rows: GrantProbeRow[];
  /** GRANT statements for what the matrix requires and the role lacks. */
  missing: string[];
  /** REVOKE / ALTER ROLE / ALTER ... OWNER / REVOKE membership statements for what it must not hold. */
  excess: string[];
}

// Excess fixes are listed by weight, the order a reviewer should read them
// in: role attributes, memberships, ownership, then single privileges.
type FixRank = 0 | 1 | 2 | 3;

class Collector {
  readonly rows: GrantProbeRow[] = [];
  private readonly missing = new Set<string>();
  private readonly excess = new Map<string, FixRank>();

  /** A row that must hold; `fix` is added when it does not hold by a grant to the role itself. */
  required(row: Omit<GrantProbeRow, 'expected' | 'ok'>, needsGrant: boolean, fix: string): void {
    this.rows.push({ ...row, expected: 'held', ok: row.actual });
    if (needsGrant) this.missing.add(fix);
  }

  /** A row that must be absent; its fixes are added when it is present. */
  forbidden(row: Omit<GrantProbeRow, 'expected' | 'ok'>, rank: FixRank, fixes: string[]): void {
    this.rows.push({ ...row, expected: 'absent', ok: !row.actual });
    if (!row.actual) return;
    for (const fix of fixes) if (!this.excess.has(fix)) this.excess.set(fix, rank);
  }

  result(role: string): GrantProbeResult {
    const missing = [...this.missing];
    const excess = [...this.excess].sort((a, b) => a[1] - b[1]).map(([sql]) => sql);
    const ok = this.rows.every((r) => r.ok) && missing.length === 0 && excess.length === 0;
    return { ok, role, rows: this.rows, missing, excess };
  }
}

const RELKIND_ALTER: Record<string, string> = { r: 'TABLE', p: 'TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW', f: 'FOREIGN TABLE', S: 'SEQUENCE' };

/** Revokes a privilege at the sources the package can reach: a grant to the role, a grant to PUBLIC. */
function revokeAtSource(fact: PrivilegeFact, ref: ObjectRef, role: string): string[] {
  const fixes: string[] = [];
  if (fact.toRole) fixes.push(revokeOnStatement(ref, fact.privilege, { role }));
  if (fact.toPublic) fixes.push(revokeOnStatement(ref, fact.privilege, 'PUBLIC'));
  return fixes;
}

/** A matrix object (`schema`, `schema.name` or `schema.fn(args)`) as catalog names. */
function toRef(grant: RequiredGrant): RequiredRef {
  const { kind, object, privilege } = grant;
  if (kind === 'schema') return { kind, schema: object, name: '', args: '', privilege };
  const fn = kind === 'function' ? /^([^.(]+)\.([^(]+)\((.*)\)$/.exec(object) : null;
  if (fn) return { kind, schema: fn[1] ?? '', name: fn[2] ?? '', args: fn[3] ?? '', privilege };
  const dot = object.indexOf('.');
  return { kind, schema: object.slice(0, dot), name: object.slice(dot + 1), args: '', privilege };
}

/** What every check step shares. */
interface Step {
  db: Db;
  role: string;
  c: Collector;
  /** `${oid}:${privilege}` of every required row: those are not excess. */
  requiredKeys: Set<string>;
}

/** Checks the exec role against the deployment grant matrix, live and read-only. */
export async function probeGrants(db: Db, execRole: string): Promise<GrantProbeResult> {
  const facts = await readExecRole(db, execRole, ADMIN_ROLE);
  if (!facts) {
    throw new CutterError(
      'EXEC_ROLE_MISSING',
      `the exec role "${execRole}" does not exist: run \`cutter db migrate\` as workflow_admin, or set CUTTER_EXEC_ROLE to the role execute should use`,
    );
  }
  const step: Step = { db, role: execRole, c: new Collector(), requiredKeys: new Set() };
  await checkRequired(step, facts.database);
  checkRole(step, facts);
  await checkDatabaseAndSchemas(step);
  await checkRelations(step);
  await checkFunctions(step);
  return step.c.result(execRole);
}

/** Every REQUIRED_GRANTS row, and that the login may SET ROLE to the exec role. */
async function checkRequired({ db, role, c, requiredKeys }: Step, database: string): Promise<void> {
  const required = await readRequired(db, role, REQUIRED_GRANTS.map(toRef));
  REQUIRED_GRANTS.forEach((grant, i) => {
    const fact = required[i];
    if (!fact || fact.oid === null) {
      throw new CutterError(
        'GRANTS_OBJECT_MISSING',
        `${grant.kind} ${grant.object} of the deployment matrix does not exist in database ${database}: run \`cutter db migrate\` first`,
      );
    }
    requiredKeys.add(`${fact.oid}:${grant.privilege}`);
    const actual = fact.effective && fact.granted;
    c.required({ object: grant.object, kind: grant.kind, privilege: grant.privilege, actual }, !fact.granted, grantStatement(grant, role));
  });
}

/** Role attributes, memberships, and the login's right to SET ROLE (the mechanism execute relies on). */
function checkRole({ role, c }: Step, facts: ExecRoleFacts): void {
  c.required(
    { object: facts.login, kind: 'login', privilege: `SET ROLE ${role}`, actual: facts.loginCanSetRole },
    !facts.loginCanSetRole,
    grantMembershipStatement(role, facts.login),
  );
  for (const attribute of FORBIDDEN_ROLE_ATTRIBUTES) {
    const keyword = ROLE_ATTRIBUTE_KEYWORD[attribute];
    const actual = facts.attributes[attribute] === true;
    c.forbidden({ object: role, kind: 'role', privilege: keyword, actual }, 0, [dropAttributeStatement(role, keyword)]);
  }
  // Membership in workflow_admin, direct or through another role; every direct
  // membership is excess anyway, so revoking those ends the indirect ones too.
  const direct = facts.memberships.includes(ADMIN_ROLE) ? [revokeMembershipStatement(ADMIN_ROLE, role)] : [];
  c.forbidden({ object: ADMIN_ROLE, kind: 'membership', privilege: 'MEMBER', actual: facts.adminMember }, 1, direct);
  for (const other of facts.memberships.filter((m) => m !== ADMIN_ROLE)) {
    c.forbidden({ object: other, kind: 'membership', privilege: 'MEMBER', actual: true }, 1, [revokeMembershipStatement(other, role)]);
  }
}

/** CREATE on the database and on every schema (DDL anywhere), and ownership of either. */
async function checkDatabaseAndSchemas({ db, role, c }: Step): Promise<void> {
  const database = await readDatabase(db, role);
  const dbRef: ObjectRef = { grantKeyword: 'DATABASE', alterKeyword: 'DATABASE', sql: ident(database.name) };
  c.forbidden({ object: database.name, kind: 'database', privilege: 'CREATE', actual: database.held }, 3, revokeAtSource(database, dbRef, role));
  if (database.owned) {
    c.forbidden({ object: database.name, kind: 'database', privilege: 'OWNER', actual: true }, 2, [alterOwnerStatement(dbRef, ADMIN_ROLE)]);
  }
  for (const schema of await readSchemas(db, role, GOVERNED_SCHEMAS)) {
    const ref: ObjectRef = { grantKeyword: 'SCHEMA', alterKeyword: 'SCHEMA', sql: ident(schema.name) };
    // Governed schemas always show their CREATE row; any other schema only when it fails.
    if (schema.governed || schema.held) {
      c.forbidden({ object: schema.name, kind: 'schema', privilege: 'CREATE', actual: schema.held }, 3, revokeAtSource(schema, ref, role));
    }
    if (schema.owned) {
      c.forbidden({ object: schema.name, kind: 'schema', privilege: 'OWNER', actual: true }, 2, [alterOwnerStatement(ref, ADMIN_ROLE)]);
    }
  }
}

/** The writes (INSERT, UPDATE, DELETE, TRUNCATE) on every governed table (always shown), any other privilege beyond the matrix, ownership. */
async function checkRelations({ db, role, c, requiredKeys }: Step): Promise<void> {
  const relations = await readRelations(db, role, GOVERNED_SCHEMAS, TABLE_PRIVILEGES, SEQUENCE_PRIVILEGES);
  const refOf = (rel: RelationFact): ObjectRef => ({
    grantKeyword: rel.relkind === 'S' ? 'SEQUENCE' : 'TABLE',
    alterKeyword: RELKIND_ALTER[rel.relkind] ?? 'TABLE',
    sql: `${ident(rel.schema)}.${ident(rel.name)}`,
  });
  const kindOf = (rel: RelationFact) => (rel.relkind === 'S' ? 'sequence' : 'table');
  for (const rel of relations) {
    if (requiredKeys.has(`${rel.oid}:${rel.privilege}`)) continue;
    const alwaysShown = kindOf(rel) === 'table' && (FORBIDDEN_TABLE_PRIVILEGES as readonly string[]).includes(rel.privilege);
    if (!alwaysShown && !rel.held) continue;
    const row = { object: `${rel.schema}.${rel.name}`, kind: kindOf(rel), privilege: rel.privilege, actual: rel.held };
    c.forbidden(row, 3, revokeAtSource(rel, refOf(rel), role));
  }
  const owned = relations.filter((r, i, all) => r.owned && !r.followsTable && all.findIndex((o) => o.oid === r.oid) === i);
  for (const rel of owned) {
    const row = { object: `${rel.schema}.${rel.name}`, kind: kindOf(rel), privilege: 'OWNER', actual: true };
    c.forbidden(row, 2, [alterOwnerStatement(refOf(rel), ADMIN_ROLE)]);
  }
}

/** EXECUTE beyond the matrix on the governed schemas' functions, and their ownership. */
async function checkFunctions({ db, role, c, requiredKeys }: Step): Promise<void> {
  for (const fn of await readFunctions(db, role, GOVERNED_SCHEMAS)) {
    const object = `${fn.schema}.${fn.name}(${fn.args})`;
    const ref: ObjectRef = { grantKeyword: 'FUNCTION', alterKeyword: 'FUNCTION', sql: `${ident(fn.schema)}.${ident(fn.name)}(${fn.args})` };
    if (fn.held && !requiredKeys.has(`${fn.oid}:EXECUTE`)) {
      c.forbidden({ object, kind: 'function', privilege: 'EXECUTE', actual: true }, 3, revokeAtSource(fn, ref, role));
    }
    if (fn.owned) c.forbidden({ object, kind: 'function', privilege: 'OWNER', actual: true }, 2, [alterOwnerStatement(ref, ADMIN_ROLE)]);
  }
}

/** How a failing row reads in an error message. */
export function describeRow(row: GrantProbeRow, role: string): string {
  if (row.kind === 'role') return `${row.privilege} attribute on role ${row.object}`;
  if (row.kind === 'membership') return `membership in ${row.object}`;
  if (row.kind === 'login') return `login ${row.object} may not SET ROLE ${role}`;
  if (row.privilege === 'OWNER') return `ownership of ${row.kind} ${row.object}`;
  return `${row.privilege} on ${row.kind} ${row.object}`;
}

/** Names at most `limit` items, then says how many more there are. */
function listSome(items: string[], limit = 8): string {
  const more = items.length - limit;
  return more > 0 ? `${items.slice(0, limit).join(', ')} and ${more} more` : items.join(', ');
}

/** The error a failed probe stops a run with (GRANTS_EXCESS before GRANTS_MISSING), or undefined when it passed. */
export function grantProbeError(result: GrantProbeResult): CutterError | undefined {
  if (result.ok) return undefined;
  const fix = 'apply `cutter grants package` with psql as workflow_admin';
  const failing = (expected: GrantProbeRow['expected']) =>
    result.rows.filter((r) => !r.ok && r.expected === expected).map((r) => describeRow(r, result.role));
  const excess = failing('absent');
  const missing = failing('held');
  if (excess.length > 0) {
    const also = missing.length > 0 ? `; it also lacks ${missing.length} required grant(s)` : '';
    const message = `exec role "${result.role}" holds what the deployment matrix forbids: ${listSome(excess)}${also}; ${fix}`;
    return new CutterError('GRANTS_EXCESS', message);
  }
  const message = `exec role "${result.role}" lacks ${missing.length} grant(s) of the deployment matrix: ${listSome(missing)}; ${fix}`;
  return new CutterError('GRANTS_MISSING', message);
}
