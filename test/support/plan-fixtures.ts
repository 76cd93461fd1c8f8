import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Pool } from '../../shared/db/pool.js';
import { ident } from '../../shared/db/pool.js';
import { phaseResult } from '../../shared/jobs/results.js';

/** Shared set-up for the target, snapshot and plan tests: rows inserted as an operator's tools would leave them. */

export interface TargetRow {
  name: string;
  corpus: string;
  protected?: boolean;
  maxUnits?: number;
  allowed?: string[];
  allowEmpty?: boolean;
}

/** Registers a target directly (the intake itself is tested on its own). */
export async function insertTargetRow(pool: Pool, t: TargetRow): Promise<void> {
  await pool.query(
    `INSERT INTO cutter_governance.target_registry (name, corpus, owner, protected, max_units, allowed_transitions, allow_empty_corpus, registered_by)
     VALUES ($1, $2, 'ops', $3, $4, $5::text[], $6, 'test')`,
    [t.name, t.corpus, t.protected ?? false, t.maxUnits ?? 1000, t.allowed ?? ['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired', 'revise'], t.allowEmpty ?? false],
  );
}

/** A run row (snapshot_record and the change set reference it). */
export async function insertRunRow(pool: Pool, r: { runId: string; target: string; corpus: string; mode?: 'dry' | 'live'; status?: string }): Promise<void> {
  await pool.query(
    `INSERT INTO cutter_governance.run (run_id, target, corpus, mode, operator, status) VALUES ($1, $2, $3, $4, 'test', $5)`,
    [r.runId, r.target, r.corpus, r.mode ?? 'dry', r.status ?? 'running'],
  );
}

export interface UnitSpec {
  key: string;
  state: 'draft' | 'enacted' | 'retired';
  body: string;
  version?: number;
}

/** Puts units into the corpus at the given version (with a version row for it). */
export async function seedUnits(pool: Pool, corpus: string, units: UnitSpec[]): Promise<void> {
  for (const u of units) {
    const version = u.version ?? 1;
    const { rows } = await pool.query<{ id: number }>(
      'INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ($1, $2, $3, $4) RETURNING id',
      [corpus, u.key, u.state, version],
    );
    await pool.query('INSERT INTO public.unit_version (unit_id, version, body, body_sha256) VALUES ($1, $2, $3, $4)', [
      rows[0]?.id,
      version,
      u.body,
      sha256(u.body),
    ]);
  }
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** NDJSON text of records, one a line. */
export function ndjson(records: unknown[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join('');
}

/** A scratch directory for snapshot files, removed by cleanup(). */
export function scratchDir(label: string): { path: (name: string) => string; write: (name: string, content: string | Buffer) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `cutter-${label}-`));
  return {
    path: (name) => join(dir, name),
    write: (name, content) => {
      const file = join(dir, name);
      writeFileSync(file, content);
      return file;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Row count and a content hash of every table in the corpus and governance schemas. */
export async function digestAllTables(pool: Pool): Promise<Record<string, { rows: number; md5: string }>> {
  const { rows: tables } = await pool.query<{ schema: string; name: string }>(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_schema IN ('public', 'cutter_governance') AND table_type = 'BASE TABLE' ORDER BY 1, 2`,
  );
  const out: Record<string, { rows: number; md5: string }> = {};
  for (const t of tables) {
    const q = `${ident(t.schema)}.${ident(t.name)}`;
    const { rows } = await pool.query<{ rows: number; md5: string | null }>(
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS md5 FROM ${q} x`,
    );
    out[`${t.schema}.${t.name}`] = { rows: rows[0]?.rows ?? 0, md5: rows[0]?.md5 ?? '' };
  }
  return out;
}

/**
 * Records a run's backup phase completed with a verified backup, as the
 * backup phase leaves it: execute may then be claimed (the phase before it
 * completed), and apply_plan finds the backup it requires.
 */
export async function recordBackupTaken(pool: Pool, runId: string): Promise<void> {
  const result = phaseResult('backup', {
    file: `/backups/${runId}.pgdump.gpg`,
    manifest_file: `/backups/${runId}.pgdump.gpg.manifest.json`,
    bytes: 1,
    sha256: sha256(runId),
    recipient_fpr: 'F'.repeat(40),
    verified: true,
  });
  await pool.query(
    `INSERT INTO cutter_governance.run_phase (run_id, phase, state, finished_at, summary) VALUES ($1, 'backup', 'completed', now(), $2)
     ON CONFLICT (run_id, phase) DO UPDATE SET state = 'completed', finished_at = now(), summary = $2`,
    [runId, JSON.stringify(result)],
  );
}
