import { ident } from '../db/pool.js';
import type { RequiredGrant } from './matrix.js';

/**
 * The grant package: the DDL workflow_admin applies with psql to bring the
 * exec role back to the deployment matrix. Every statement is built here, so
 * `cutter db migrate` and the package speak the same SQL.
 */

/** `schema.name` or `schema.fn(args)` → the quoted form GRANT expects. */
export function quoteObject(object: string): string {
  const fn = /^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\(([a-z0-9_ ,]*)\)$/.exec(object);
  if (fn) return `${ident(fn[1] ?? '')}.${ident(fn[2] ?? '')}(${fn[3] ?? ''})`;
  const parts = object.split('.');
  return parts.map((p) => ident(p)).join('.');
}

const KEYWORD: Record<RequiredGrant['kind'], string> = {
  schema: 'SCHEMA',
  table: 'TABLE',
  sequence: 'SEQUENCE',
  function: 'FUNCTION',
};

/** The GRANT statement that gives `role` one row of the matrix. */
export function grantStatement(grant: RequiredGrant, role: string): string {
  return `GRANT ${grant.privilege} ON ${KEYWORD[grant.kind]} ${quoteObject(grant.object)} TO ${ident(role)};`;
}

/** The REVOKE statement that takes one privilege away from `role`. */
export function revokeStatement(grant: { kind: RequiredGrant['kind']; object: string; privilege: string }, role: string): string {
  return `REVOKE ${grant.privilege} ON ${KEYWORD[grant.kind]} ${quoteObject(grant.object)} FROM ${ident(role)};`;
}

/** An object found live in the catalog, already quoted by the caller (names are not matrix constants). */
export interface ObjectRef {
  /** The keyword GRANT/REVOKE use: TABLE covers views too. */
  grantKeyword: 'TABLE' | 'SEQUENCE' | 'FUNCTION' | 'SCHEMA' | 'DATABASE';
  /** The keyword ALTER ... OWNER TO uses (VIEW, MATERIALIZED VIEW, ...). */
  alterKeyword: string;
  /** The quoted reference, e.g. "public"."information_unit". */
  sql: string;
}

/** REVOKE of one privilege on a live object, from a role or from PUBLIC. */
export function revokeOnStatement(ref: ObjectRef, privilege: string, grantee: { role: string } | 'PUBLIC'): string {
  const from = grantee === 'PUBLIC' ? 'PUBLIC' : ident(grantee.role);
  return `REVOKE ${privilege} ON ${ref.grantKeyword} ${ref.sql} FROM ${from};`;
}

/** Hands an object the exec role owns back to `owner` (ownership carries every privilege and DDL). */
export function alterOwnerStatement(ref: ObjectRef, owner: string): string {
  return `ALTER ${ref.alterKeyword} ${ref.sql} OWNER TO ${ident(owner)};`;
}

/** Takes a role attribute away, e.g. ALTER ROLE "x" NOSUPERUSER. */
export function dropAttributeStatement(role: string, keyword: string): string {
  return `ALTER ROLE ${ident(role)} NO${keyword};`;
}

/** Ends `member`'s membership in `granted`. */
export function revokeMembershipStatement(granted: string, member: string): string {
  return `REVOKE ${ident(granted)} FROM ${ident(member)};`;
}

/** Makes `member` a member of `granted` (so it may SET ROLE to it). */
export function grantMembershipStatement(granted: string, member: string): string {
  return `GRANT ${ident(granted)} TO ${ident(member)};`;
}

/** What the package is made of: a probe result has these fields. */
export interface GrantPackageInput {
  role: string;
  missing: readonly string[];
  excess: readonly string[];
}

/**
 * The package as psql input: one transaction, excess taken away first (an
 * ownership transfer drops the old owner's grants, so the GRANTs must come
 * after it), ON_ERROR_STOP so a failing line fails psql instead of scrolling by.
 * With nothing to do it is a single comment line.
 */
export function renderGrantPackage(input: GrantPackageInput, options: { database?: string } = {}): string {
  const where = options.database === undefined ? '' : ` on database ${ident(options.database)}`;
  if (input.missing.length === 0 && input.excess.length === 0) {
    return `-- cutter grant package for role ${ident(input.role)}${where}: nothing is missing and nothing is excess\n`;
  }
  const lines = [
    `-- cutter grant package for role ${ident(input.role)}${where}`,
    '-- apply as workflow_admin (ALTER ROLE and membership lines need a superuser): psql "$DATABASE_URL" -f package.sql',
    '\\set ON_ERROR_STOP on',
    'BEGIN;',
  ];
  if (input.excess.length > 0) {
    lines.push(`-- excess: ${input.excess.length} statement(s) taking away what the matrix forbids`, ...input.excess);
  }
  if (input.missing.length > 0) {
    lines.push(`-- missing: ${input.missing.length} grant(s) the matrix requires`, ...input.missing);
  }
  lines.push('COMMIT;');
  return `${lines.join('\n')}\n`;
}
