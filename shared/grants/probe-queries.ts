import type { Pool, PoolClient } from '../db/pool.js';

/**
 * The catalog reads behind the grant probe: SELECTs only, one function per
 * query, role and object names always passed as $n values.
 *
 * "to_role" / "to_public" say where a privilege comes from (an ACL entry for
 * the exec role itself, or for PUBLIC), so the package can revoke it at its
 * source. The owner's own ACL entry is not counted as a grant: it moves with
 * ownership, which the probe reports (and fixes) separately.
 */

export type Db = Pool | PoolClient;

/** The exec role's attributes and what the connected login may do with it; undefined when the role does not exist. */
export interface ExecRoleFacts {
  attributes: Record<string, unknown>;
  login: string;
  loginCanSetRole: boolean;
  adminMember: boolean;
  database: string;
  memberships: string[];
}

/** Reads the exec role from pg_roles and pg_auth_members. */
export async function readExecRole(db: Db, role: string, adminRole: string): Promise<ExecRoleFacts | undefined> {
  const { rows } = await db.query<Omit<ExecRoleFacts, 'memberships'> & { memberships: string[] | null }>(
    `WITH a AS (SELECT oid FROM pg_roles WHERE rolname = $2)
     SELECT to_jsonb(r) AS attributes,
            current_user::text AS login,
            pg_has_role(current_user, r.oid, 'MEMBER') AS "loginCanSetRole",
            coalesce(pg_has_role(r.oid, (SELECT oid FROM a), 'MEMBER'), false) AS "adminMember",
            current_database()::text AS database,
            (SELECT array_agg(DISTINCT g.rolname::text ORDER BY g.rolname::text)
               FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = r.oid) AS memberships
       FROM pg_roles r WHERE r.rolname = $1`,
    [role, adminRole],
  );
  const row = rows[0];
  return row === undefined ? undefined : { ...row, memberships: row.memberships ?? [] };
}

/** One row of REQUIRED_GRANTS, resolved live. */
export interface RequiredFact {
  oid: number | null;
  /** The exec role can use it (has_*_privilege, from any source). */
  effective: boolean;
  /** It is granted to the exec role itself, not merely inherited, public or owned. */
  granted: boolean;
}

/** A matrix row split into catalog names (functions carry their argument types). */
export interface RequiredRef {
  kind: string;
  schema: string;
  name: string;
  args: string;
  privilege: string;
}

/**
 * Resolves every required (kind, object, privilege) and checks it in one round
 * trip, in the order given. Names are matched in the catalog rather than with
 * to_regclass: a login without USAGE on a schema may still probe it.
 */
export async function readRequired(db: Db, role: string, required: readonly RequiredRef[]): Promise<RequiredFact[]> {
  const col = (k: keyof RequiredRef) => required.map((g) => g[k]);
  const { rows } = await db.query<RequiredFact & { ord: number }>(
    `WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     m AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
             WITH ORDINALITY AS m(kind, schema, name, args, privilege, ord)),
     o AS (
       SELECT m.*, CASE m.kind
           WHEN 'schema' THEN (SELECT n.oid FROM pg_namespace n WHERE n.nspname = m.schema)
           WHEN 'function' THEN (
             SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = m.schema AND p.proname = m.name
                AND replace(oidvectortypes(p.proargtypes), ' ', '') = replace(m.args, ' ', ''))
           ELSE (
             SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = m.schema AND c.relname = m.name
                AND c.relkind = ANY(CASE m.kind WHEN 'sequence' THEN '{S}'::"char"[] ELSE '{r,p,v,m,f}'::"char"[] END))
           END AS oid
         FROM m),
     a AS (
       SELECT o.*,
              CASE o.kind
                WHEN 'schema' THEN (SELECT nspowner FROM pg_namespace WHERE oid = o.oid)
                WHEN 'function' THEN (SELECT proowner FROM pg_proc WHERE oid = o.oid)
                ELSE (SELECT relowner FROM pg_class WHERE oid = o.oid) END AS owner,
              CASE o.kind
                WHEN 'schema' THEN (SELECT coalesce(nspacl, acldefault('n', nspowner)) FROM pg_namespace WHERE oid = o.oid)
                WHEN 'function' THEN (SELECT coalesce(proacl, acldefault('f', proowner)) FROM pg_proc WHERE oid = o.oid)
                WHEN 'sequence' THEN (SELECT coalesce(relacl, acldefault('s', relowner)) FROM pg_class WHERE oid = o.oid)
                ELSE (SELECT coalesce(relacl, acldefault('r', relowner)) FROM pg_class WHERE oid = o.oid) END AS acl
         FROM o)
     SELECT a.ord, a.oid::int8 AS oid,
            coalesce(CASE a.kind
              WHEN 'schema' THEN has_schema_privilege(r.oid, a.oid, a.privilege)
              WHEN 'function' THEN has_function_privilege(r.oid, a.oid, a.privilege)
              WHEN 'sequence' THEN has_sequence_privilege(r.oid, a.oid, a.privilege)
              ELSE has_table_privilege(r.oid, a.oid, a.privilege) END, false) AS effective,
            coalesce(a.owner <> r.oid AND EXISTS (
              SELECT 1 FROM aclexplode(a.acl) x WHERE x.grantee = r.oid AND x.privilege_type = a.privilege), false) AS granted
       FROM a CROSS JOIN r
      ORDER BY a.ord`,
    [role, col('kind'), col('schema'), col('name'), col('args'), col('privilege')],
  );
  return rows.map(({ oid, effective, granted }) => ({ oid, effective, granted }));
}

/** Where a privilege the role holds comes from. */
export interface PrivilegeFact {
  oid: number;
  schema: string;
  name: string;
  privilege: string;
  held: boolean;
  toRole: boolean;
  toPublic: boolean;
}

/** A relation (table, view, sequence, ...) of a governed schema × every privilege it can carry. */
export interface RelationFact extends PrivilegeFact {
  relkind: string;
  owned: boolean;
  /** A sequence owned by a column follows its table's owner; only the table can be handed over. */
  followsTable: boolean;
}

/** Every relation of the governed schemas, each privilege checked for the exec role. */
export async function readRelations(
  db: Db,
  role: string,
  schemas: readonly string[],
  tablePrivileges: readonly string[],
  sequencePrivileges: readonly string[],
): Promise<RelationFact[]> {
  const { rows } = await db.query<RelationFact>(
    `WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     c AS (
       SELECT c.oid, n.nspname, c.relname, c.relkind, c.relowner,
              coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S'))
     SELECT c.oid::int8 AS oid, c.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS relkind, p.privilege,
            CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(r.oid, c.oid, p.privilege)
                 -- column grants count: UPDATE on one column of audit_event is still an UPDATE
                 WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') THEN has_any_column_privilege(r.oid, c.oid, p.privilege)
                 ELSE has_table_privilege(r.oid, c.oid, p.privilege) END AS held,
            c.relowner = r.oid AS owned,
            EXISTS (SELECT 1 FROM pg_depend d
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) AND c.relkind = 'S' AS "followsTable",
            (c.relowner <> r.oid AND EXISTS (SELECT 1 FROM aclexplode(c.acl) x WHERE x.grantee = r.oid AND x.privilege_type = p.privilege))
              OR EXISTS (SELECT 1 FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) x
                          WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL AND x.grantee = r.oid AND x.privilege_type = p.privilege) AS "toRole",
            EXISTS (SELECT 1 FROM aclexplode(c.acl) x WHERE x.grantee = 0 AND x.privilege_type = p.privilege)
              OR EXISTS (SELECT 1 FROM pg_attribute t CROSS JOIN LATERAL aclexplode(t.attacl) x
                          WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL AND x.grantee = 0 AND x.privilege_type = p.privilege) AS "toPublic"
       FROM c CROSS JOIN r
       CROSS JOIN LATERAL unnest(CASE WHEN c.relkind = 'S' THEN $4::text[] ELSE $3::text[] END) AS p(privilege)
      ORDER BY c.nspname, c.relname, p.privilege`,
    [role, schemas, tablePrivileges, sequencePrivileges],
  );
  return rows;
}

/** A function of a governed schema and whether the exec role may EXECUTE it. */
export interface FunctionFact extends PrivilegeFact {
  /** Argument types as Postgres prints them (quoted where needed). */
  args: string;
  owned: boolean;
}

/** Every plain function of the governed schemas (the kind `cutter db migrate` takes EXECUTE away from). */
export async function readFunctions(db: Db, role: string, schemas: readonly string[]): Promise<FunctionFact[]> {
  const { rows } = await db.query<FunctionFact>(
    `WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1),
     f AS (
       SELECT p.oid, n.nspname, p.proname, p.proargtypes, p.proowner,
              coalesce(p.proacl, acldefault('f', p.proowner)) AS acl
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($2::text[]) AND p.prokind = 'f')
     SELECT f.oid::int8 AS oid, f.nspname::text AS schema, f.proname::text AS name, oidvectortypes(f.proargtypes) AS args,
            'EXECUTE' AS privilege,
            has_function_privilege(r.oid, f.oid, 'EXECUTE') AS held,
            f.proowner = r.oid AS owned,
            f.proowner <> r.oid AND EXISTS (SELECT 1 FROM aclexplode(f.acl) x WHERE x.grantee = r.oid AND x.privilege_type = 'EXECUTE') AS "toRole",
            EXISTS (SELECT 1 FROM aclexplode(f.acl) x WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE') AS "toPublic"
       FROM f CROSS JOIN r
      ORDER BY f.nspname, f.proname, 4`,
    [role, schemas],
  );
  return rows;
}

/** A schema and whether the exec role may CREATE in it. */
export interface SchemaFact extends PrivilegeFact {
  owned: boolean;
  governed: boolean;
}

/** CREATE on every schema of the database (system schemas aside): DDL anywhere is DDL. */
export async function readSchemas(db: Db, role: string, governed: readonly string[]): Promise<SchemaFact[]> {
  const { rows } = await db.query<SchemaFact>(
    `WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1)
     SELECT n.oid::int8 AS oid, n.nspname::text AS schema, n.nspname::text AS name, 'CREATE' AS privilege,
            has_schema_privilege(r.oid, n.oid, 'CREATE') AS held,
            n.nspowner = r.oid AS owned,
            n.nspname = ANY($2::text[]) AS governed,
            n.nspowner <> r.oid AND EXISTS (SELECT 1 FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
                                             WHERE x.grantee = r.oid AND x.privilege_type = 'CREATE') AS "toRole",
            EXISTS (SELECT 1 FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
                     WHERE x.grantee = 0 AND x.privilege_type = 'CREATE') AS "toPublic"
       FROM pg_namespace n CROSS JOIN r
      WHERE n.nspname NOT LIKE 'pg\\_%' OR n.nspname = ANY($2::text[])
      ORDER BY n.nspname`,
    [role, governed],
  );
  return rows;
}

/** The current database: CREATE there means CREATE SCHEMA, and its owner owns the public schema. */
export async function readDatabase(db: Db, role: string): Promise<PrivilegeFact & { owned: boolean }> {
  const { rows } = await db.query<PrivilegeFact & { owned: boolean }>(
    `WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1)
     SELECT d.oid::int8 AS oid, '' AS schema, d.datname::text AS name, 'CREATE' AS privilege,
            has_database_privilege(r.oid, d.oid, 'CREATE') AS held,
            d.datdba = r.oid AS owned,
            d.datdba <> r.oid AND EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) x
                                          WHERE x.grantee = r.oid AND x.privilege_type = 'CREATE') AS "toRole",
            EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) x
                     WHERE x.grantee = 0 AND x.privilege_type = 'CREATE') AS "toPublic"
       FROM pg_database d CROSS JOIN r
      WHERE d.datname = current_database()`,
    [role],
  );
  const row = rows[0];
  if (!row) throw new Error('current_database() is missing from pg_database');
  return row;
}
