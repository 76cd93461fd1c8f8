import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DEFINITION, loadFunctionFiles, withoutComments } from '../../shared/db/function-files.js';
import { AMENDED, planHistory, SQUASHED } from '../../shared/db/migration-history.js';
import { loadMigrations } from '../../shared/db/numbered-migrations.js';

const DB_DIR = new URL('../../shared/db/', import.meta.url);
const SQL_DIRS = ['migrations', 'functions', 'triggers'];

/** Every shipped .sql file: its path under shared/db/ and its text. */
async function sqlFiles(): Promise<{ path: string; sql: string }[]> {
  const files: { path: string; sql: string }[] = [];
  for (const dir of SQL_DIRS) {
    for (const name of (await readdir(new URL(`${dir}/`, DB_DIR))).filter((n) => n.endsWith('.sql')).sort()) {
      files.push({ path: `${dir}/${name}`, sql: await readFile(new URL(`${dir}/${name}`, DB_DIR), 'utf8') });
    }
  }
  return files;
}

describe('migration files', () => {
  it('are numbered without duplicates and start at 001', async () => {
    const files = await loadMigrations();
    expect(files[0]?.name).toBe('001_corpus.sql');
    const versions = files.map((f) => f.version);
    expect(new Set(versions).size).toBe(versions.length);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
  });

  it('keep 001 as released, and list 002 and 003 as amended', async () => {
    const files = await loadMigrations();
    expect(files.find((f) => f.version === 1)?.sha256).toBe('b2fb8674c5bbd91d9e0b6fa127409764aa01042c40bca7978a3c31a75355f349');
    expect(AMENDED.map((a) => a.version)).toEqual([2, 3]);
    for (const a of AMENDED) expect(files.find((f) => f.version === a.version)?.sha256).not.toBe(a.oldSha256);
  });

  it('hold tables, constraints, indexes and data moves only: no function or trigger', async () => {
    for (const m of await loadMigrations()) {
      expect(withoutComments(m.sql), m.name).not.toMatch(/\bCREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|TRIGGER)\b|\bOR\s+REPLACE\b/i);
    }
  });

  it('define each function and trigger in exactly one file', async () => {
    const where = new Map<string, string[]>();
    for (const f of await sqlFiles()) {
      for (const m of withoutComments(f.sql).matchAll(DEFINITION)) {
        const name = (m[1] ?? '').toLowerCase().replace(/^cutter_governance\./, '');
        where.set(name, [...(where.get(name) ?? []), f.path]);
      }
    }
    const { functions, triggers } = await loadFunctionFiles();
    expect([...where.keys()].sort()).toEqual([...functions, ...triggers].map((f) => f.name).sort());
    for (const [name, paths] of where) expect(paths, name).toHaveLength(1);
  });

  it('carry no benchmark narration in their comments', async () => {
    for (const f of await sqlFiles()) {
      const comments = (f.sql.match(/--[^\n]*/g) ?? []).join('\n');
      expect(comments, f.path).not.toMatch(/\d+(\.\d+)?\s*(ms|s|us|µs)\b|measured|bench/i);
    }
  });
});

describe('migration history', () => {
  const files = [
    { version: 1, name: '001_corpus.sql', sha256: 'a1' },
    { version: 2, name: '002_governance.sql', sha256: 'b2' },
    { version: 3, name: '003_audit.sql', sha256: 'c3' },
    { version: 10, name: '010_staging_checks_indexes.sql', sha256: 'd10' },
  ];
  const current = files.slice(0, 3);
  const amendedOld = AMENDED.map((a) => ({ version: a.version, name: `00${a.version}`, sha256: a.oldSha256 }));

  it('amends 002 and 003 recorded with their old hashes', () => {
    const plan = planHistory([current[0]!, ...amendedOld], files);
    expect(plan.amend.map((a) => [a.version, a.sha256])).toEqual([[2, 'b2'], [3, 'c3']]);
    expect(plan.squash).toBeNull();
  });

  it('replaces the complete old 010-019 by the squashed file', () => {
    const plan = planHistory([...files.slice(0, 3), ...SQUASHED.replaced], files);
    expect(plan.squash?.by).toEqual([files[3]]);
    expect(plan.squash?.replaced.map((r) => r.version)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('refuses part of the old 010-019, or one with another hash', () => {
    expect(() => planHistory([...current, ...SQUASHED.replaced.slice(0, 5)], files)).toThrow(expect.objectContaining({ code: 'MIGRATION_SQUASHED' }));
    expect(() => planHistory([...current, { version: 12, name: '012_x.sql', sha256: 'f' }], files)).toThrow(
      expect.objectContaining({ code: 'MIGRATION_SQUASHED' }),
    );
    const other = SQUASHED.replaced.map((r) => (r.version === 14 ? { ...r, sha256: 'f' } : r));
    expect(() => planHistory([...current, ...other], files)).toThrow(expect.objectContaining({ code: 'MIGRATION_SQUASHED' }));
  });

  it('keeps refusing edited and unknown migrations', () => {
    expect(() => planHistory([{ ...files[0]!, sha256: 'x' }], files)).toThrow(expect.objectContaining({ code: 'MIGRATION_EDITED' }));
    expect(() => planHistory([...files, { version: 20, name: '020_later.sql', sha256: 'e' }], files)).toThrow(
      expect.objectContaining({ code: 'MIGRATION_UNKNOWN' }),
    );
    expect(planHistory(files, files)).toEqual({ amend: [], squash: null });
  });

  it('refuses a new file numbered like a squashed one', () => {
    expect(() => planHistory([], [...files, { version: 12, name: '012_new.sql', sha256: 'n' }])).toThrow(
      expect.objectContaining({ code: 'MIGRATION_NAME' }),
    );
  });
});

describe('shared/db', () => {
  it('imports no other folder of shared/ (shared/deploy composes it with grants)', async () => {
    const dir = new URL('../../shared/db/', import.meta.url);
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.ts'))) {
      const source = await readFile(new URL(name, dir), 'utf8');
      const outside = [...source.matchAll(/from '(\.\.\/[^']+)'/g)].map((m) => m[1] ?? '').filter((p) => p.split('/').length > 2);
      expect(outside, name).toEqual([]);
    }
  });
});
