import { describe, expect, it } from 'vitest';
import { loadMigrations } from '../../shared/db/migrate.js';

describe('migration files', () => {
  it('are numbered without duplicates and start at 001', async () => {
    const files = await loadMigrations();
    expect(files[0]?.name).toBe('001_corpus.sql');
    const versions = files.map((f) => f.version);
    expect(new Set(versions).size).toBe(versions.length);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
  });
});
