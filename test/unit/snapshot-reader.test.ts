import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapshotInvalidError } from '../../shared/snapshot/issues.js';
import { KeyIndex } from '../../shared/snapshot/key-index.js';
import { SnapshotReader } from '../../shared/snapshot/reader.js';
import type { SnapshotRecord } from '../../shared/snapshot/record.js';
import { validateSnapshot } from '../../shared/snapshot/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'cutter-reader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Reads a whole buffer pushed in pieces of `size` bytes. */
function readInPieces(bytes: Buffer, size: number) {
  const records: (SnapshotRecord & { line: number; index: number | undefined })[] = [];
  const reader = new SnapshotReader({ corpus: 'W', maxErrors: 50, onRecord: (r, at) => records.push({ ...r, line: at.line, index: at.index }) });
  for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
  reader.end();
  return { records, issues: reader.issues, format: reader.format };
}

const records = [
  { key: 'W/1', state: 'draft', body: 'plain' },
  { key: 'W/2', state: 'enacted', body: 'multi-byte: é 中文 🎉 and "quotes", [brackets] {braces} \\ backslash' },
  { key: 'W/3', state: 'retired', body: 'line\nbreak\tand tab' },
];

describe('the reader does not depend on where the chunks break', () => {
  const ndjson = Buffer.from(`${records.map((r) => JSON.stringify(r)).join('\r\n')}\r\n\n`);
  const array = Buffer.from(JSON.stringify(records, null, 2));

  for (const size of [1, 2, 3, 5, 7, 64, 4096]) {
    it(`NDJSON in ${size}-byte pieces`, () => {
      const got = readInPieces(ndjson, size);
      expect(got.issues).toEqual([]);
      expect(got.format).toBe('ndjson');
      expect(got.records).toEqual(records.map((r, i) => ({ ...r, line: i + 1, index: undefined })));
    });

    it(`a JSON array in ${size}-byte pieces`, () => {
      const got = readInPieces(array, size);
      expect(got.issues).toEqual([]);
      expect(got.format).toBe('json-array');
      expect(got.records).toEqual(records.map((r, i) => ({ ...r, line: 2 + i * 5, index: i })));
    });

    it(`bad UTF-8 split across ${size}-byte pieces is still found on its line`, () => {
      const bytes = Buffer.concat([Buffer.from(`${JSON.stringify(records[0])}\n{"key":"W/9","state":"draft","body":"a`), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from('"}\n')]);
      const got = readInPieces(bytes, size);
      expect(got.issues).toEqual([{ line: 2, field: 'body', message: expect.stringMatching(/bad UTF-8: byte 0x28 at byte 40 of the record/) as unknown }]);
    });
  }
});

describe('the key index', () => {
  it('finds every repeated key among many and nothing else', () => {
    const index = new KeyIndex(4); // tiny on purpose: it must grow
    const hits: [number, number][] = [];
    for (let i = 0; i < 50_000; i += 1) {
      const hit = index.add(`K/${i % 40_000}`, i);
      if (hit >= 0) hits.push([i, hit]);
    }
    expect(hits).toHaveLength(10_000);
    expect(hits.every(([i, first]) => first === i - 40_000)).toBe(true);
  });

  it('a hash collision between different keys is not reported as a duplicate', async () => {
    // Every key "collides" with the first: only a real repeat may be reported.
    let first = -1;
    const collideAll = { add: (_key: string, ordinal: number) => (first < 0 ? ((first = ordinal), -1) : first) };
    const unique = join(dir, 'unique.ndjson');
    writeFileSync(unique, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await expect(validateSnapshot(unique, { corpus: 'W', keyIndex: collideAll })).resolves.toMatchObject({ records: 3 });

    first = -1;
    const repeated = join(dir, 'repeated.ndjson');
    writeFileSync(repeated, [...records, records[1], records[2], records[1]].map((r) => `${JSON.stringify(r)}\n`).join(''));
    const err = await validateSnapshot(repeated, { corpus: 'W', keyIndex: collideAll }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotInvalidError);
    expect((err as SnapshotInvalidError).issues.map((i) => [i.line, i.message])).toEqual([
      [4, 'duplicate key "W/2": already on line 2'],
      [5, 'duplicate key "W/3": already on line 3'],
      [6, 'duplicate key "W/2": already on line 2'],
    ]);
  });
});
