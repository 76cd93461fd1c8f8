import { ident } from '../db/pool.js';
import type { RequiredGrant } from './matrix.js';

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
