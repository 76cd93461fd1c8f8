/**
 * The deployment grant matrix: the one place that says what the exec role
 * must hold and what it must never hold. `cutter db migrate` applies the
 * required half; the grant probe checks both halves live.
 */

export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE' | 'REFERENCES' | 'TRIGGER';

export type RequiredGrant =
  | { kind: 'schema'; object: string; privilege: 'USAGE' }
  | { kind: 'table'; object: string; privilege: TablePrivilege }
  | { kind: 'sequence'; object: string; privilege: 'USAGE' }
  | { kind: 'function'; object: string; privilege: 'EXECUTE' };

export const CORPUS_SCHEMA = 'public';
export const GOVERNANCE_SCHEMA = 'cutter_governance';
export const ADMIN_ROLE = 'workflow_admin';

/** Every schema whose objects the probe inspects for excess privileges. */
export const GOVERNED_SCHEMAS = [CORPUS_SCHEMA, GOVERNANCE_SCHEMA] as const;

const table = (object: string, ...privileges: TablePrivilege[]): RequiredGrant[] =>
  privileges.map((privilege) => ({ kind: 'table', object, privilege }));

/** What execute needs, and nothing more. */
export const REQUIRED_GRANTS: readonly RequiredGrant[] = [
  { kind: 'schema', object: 'public', privilege: 'USAGE' },
  { kind: 'schema', object: 'cutter_governance', privilege: 'USAGE' },
  ...table('public.information_unit', 'SELECT', 'INSERT', 'UPDATE'),
  ...table('public.unit_version', 'SELECT', 'INSERT'),
  ...table('public.iu_lifecycle_log', 'SELECT', 'INSERT'),
  ...table('cutter_governance.cut_change_set', 'SELECT', 'UPDATE'),
  ...table('cutter_governance.cut_change_item', 'SELECT'),
  ...table('cutter_governance.execution_ledger', 'SELECT', 'INSERT'),
  ...table('cutter_governance.audit_event', 'INSERT'),
  { kind: 'sequence', object: 'public.information_unit_id_seq', privilege: 'USAGE' },
  { kind: 'sequence', object: 'public.iu_lifecycle_log_id_seq', privilege: 'USAGE' },
  { kind: 'function', object: 'cutter_governance.execution_enabled(text)', privilege: 'EXECUTE' },
  { kind: 'function', object: 'cutter_governance.disarm_execution(text)', privilege: 'EXECUTE' },
];

/** Table privileges the exec role must hold on no table of a governed schema. */
export const FORBIDDEN_TABLE_PRIVILEGES: readonly TablePrivilege[] = ['DELETE', 'TRUNCATE'];

/**
 * Role attributes the exec role must not have (pg_roles columns), with the
 * keyword ALTER ROLE uses. REPLICATION is here too: it can stream every row.
 */
export const FORBIDDEN_ROLE_ATTRIBUTES = ['rolsuper', 'rolcreaterole', 'rolcreatedb', 'rolbypassrls', 'rolreplication'] as const;

export type RoleAttribute = (typeof FORBIDDEN_ROLE_ATTRIBUTES)[number];

export const ROLE_ATTRIBUTE_KEYWORD: Record<RoleAttribute, string> = {
  rolsuper: 'SUPERUSER',
  rolcreaterole: 'CREATEROLE',
  rolcreatedb: 'CREATEDB',
  rolbypassrls: 'BYPASSRLS',
  rolreplication: 'REPLICATION',
};

/** Every privilege a table (or view) can carry; the probe flags any beyond REQUIRED_GRANTS. */
export const TABLE_PRIVILEGES: readonly TablePrivilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];

/** Every privilege a sequence can carry (UPDATE is setval). */
export const SEQUENCE_PRIVILEGES = ['USAGE', 'SELECT', 'UPDATE'] as const;
