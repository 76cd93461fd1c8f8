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

/**
 * What execute needs, and nothing more: the exec role writes the corpus only
 * through cutter_governance.apply_plan (SECURITY DEFINER), which applies the
 * plan of a run whose kill switch is on, once; it holds no privilege on any
 * table or sequence, so with the switch off (or on for another run)
 * PostgreSQL refuses every write it could try.
 */
export const REQUIRED_GRANTS: readonly RequiredGrant[] = [
  { kind: 'schema', object: 'cutter_governance', privilege: 'USAGE' },
  { kind: 'function', object: 'cutter_governance.execution_enabled(text)', privilege: 'EXECUTE' },
  { kind: 'function', object: 'cutter_governance.apply_plan(text,text)', privilege: 'EXECUTE' },
];

/**
 * The application's role: what the workers, the board and the operators'
 * CLI connect as (their logins are this role or members of it), never a
 * superuser, so the database's own guarantees hold against them too. It
 * reads everything (fingerprints, pg_dump, readiness), calls the
 * cutter_governance functions, may SET ROLE to the exec role for execute,
 * and writes only the governance rows below: never the corpus, the ledger,
 * the audit chain, the kill switch or an approval except through the
 * functions that own them (execute's apply_plan, store_approval, open_gate,
 * append_audit, disarm_execution).
 */
export const APP_ROLE = 'cutter_app';

export const APP_WRITES: Readonly<Record<string, readonly TablePrivilege[]>> = {
  'cutter_governance.run': ['INSERT', 'UPDATE'],
  'cutter_governance.run_phase': ['INSERT', 'UPDATE'],
  'cutter_governance.target_registry': ['INSERT'],
  'cutter_governance.corpus_lock': ['INSERT', 'UPDATE', 'DELETE'],
  'cutter_governance.snapshot_record': ['INSERT', 'DELETE'],
  'cutter_governance.revert_skip': ['INSERT', 'DELETE'],
  'cutter_governance.cut_change_set': ['INSERT', 'UPDATE'],
  'cutter_governance.cut_change_item': ['INSERT'],
  'cutter_governance.verify_result': ['INSERT', 'UPDATE'],
  'cutter_governance.g0_baseline': ['INSERT'],
  // Notifications (docs/notifications.md): the outbox itself is written only by its trigger.
  'cutter_governance.notification_delivery': ['INSERT', 'UPDATE'],
  'cutter_governance.webhook_endpoint': ['INSERT', 'UPDATE'],
};

/** Table privileges the exec role must hold on no table of a governed schema: it writes only through apply_plan. */
export const FORBIDDEN_TABLE_PRIVILEGES: readonly TablePrivilege[] = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

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
