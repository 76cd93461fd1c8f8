import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import type { Registration } from './registration.js';

/** A registered target (cutter_governance.target_registry), camelCased. */
export interface TargetRecord {
  name: string;
  corpus: string;
  owner: string;
  protected: boolean;
  maxUnits: number;
  allowedTransitions: string[];
  allowEmptyCorpus: boolean;
  registeredBy: string;
  registeredUtc: Date;
  notes: string;
}

interface TargetRow {
  name: string;
  corpus: string;
  owner: string;
  protected: boolean;
  max_units: number;
  allowed_transitions: string[];
  allow_empty_corpus: boolean;
  registered_by: string;
  registered_utc: Date;
  notes: string;
}

const COLUMNS = `name, corpus, owner, protected, max_units, allowed_transitions, allow_empty_corpus,
                 registered_by, registered_utc, notes`;

function toRecord(row: TargetRow): TargetRecord {
  return {
    name: row.name,
    corpus: row.corpus,
    owner: row.owner,
    protected: row.protected,
    maxUnits: row.max_units,
    allowedTransitions: row.allowed_transitions,
    allowEmptyCorpus: row.allow_empty_corpus,
    registeredBy: row.registered_by,
    registeredUtc: row.registered_utc,
    notes: row.notes,
  };
}

/** The target of that name, or null when none is registered. */
export async function getTarget(db: Pool | PoolClient, name: string): Promise<TargetRecord | null> {
  const result = await db.query<TargetRow>(`SELECT ${COLUMNS} FROM cutter_governance.target_registry WHERE name = $1`, [name]);
  const row = result.rows[0];
  return row ? toRecord(row) : null;
}

/** The target of that name; TARGET_UNKNOWN (bad input, exit 2) when none is registered. */
export async function requireTarget(db: Pool | PoolClient, name: string): Promise<TargetRecord> {
  const target = await getTarget(db, name);
  if (target) return target;
  throw new CutterError('TARGET_UNKNOWN', `no target ${name} is registered: see cutter target list, or register it with cutter target register --file T.json`, {
    kind: 'bad_input',
  });
}

/** Every registered target, by name. */
export async function listTargets(db: Pool | PoolClient): Promise<TargetRecord[]> {
  const result = await db.query<TargetRow>(`SELECT ${COLUMNS} FROM cutter_governance.target_registry ORDER BY name`);
  return result.rows.map(toRecord);
}

/** Inserts a validated registration; a name already taken raises 23505 (the caller maps it). */
export async function insertTarget(db: Pool | PoolClient, reg: Registration, registeredBy: string): Promise<TargetRecord> {
  const result = await db.query<TargetRow>(
    `INSERT INTO cutter_governance.target_registry
       (name, corpus, owner, protected, max_units, allowed_transitions, allow_empty_corpus, registered_by, notes)
     VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8, $9)
     RETURNING ${COLUMNS}`,
    [reg.name, reg.corpus, reg.owner, reg.protected, reg.max_units, reg.allowed_transitions, reg.allow_empty_corpus, registeredBy, reg.notes],
  );
  const row = result.rows[0];
  if (!row) throw new Error('INSERT … RETURNING returned no row');
  return toRecord(row);
}

/** The snake_case JSON form of a target (the CLI's --json contract). */
export function targetJson(t: TargetRecord): Record<string, unknown> {
  return {
    name: t.name,
    corpus: t.corpus,
    owner: t.owner,
    protected: t.protected,
    max_units: t.maxUnits,
    allowed_transitions: t.allowedTransitions,
    allow_empty_corpus: t.allowEmptyCorpus,
    registered_by: t.registeredBy,
    registered_utc: t.registeredUtc.toISOString(),
    notes: t.notes,
  };
}
