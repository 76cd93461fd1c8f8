import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEMO_WORK_TARGET, demoSnapshotRecords } from '../../shared/demo/corpus.js';

const read = (name: string) => readFileSync(new URL(`../../demo/${name}`, import.meta.url), 'utf8');

describe('demo files', () => {
  it('the snapshot enacts 40, revises 5 and adds 10 ICX-WORK units', () => {
    const lines = read('icx-work.snapshot.ndjson').trimEnd().split('\n');
    const records = lines.map((l) => JSON.parse(l) as { key: string; state: string; body: string });
    expect(records).toEqual(demoSnapshotRecords());
    expect(records.filter((r) => r.state === 'enacted')).toHaveLength(40);
    expect(records.filter((r) => r.body.endsWith('version 2.'))).toHaveLength(5);
    expect(records.filter((r) => Number(r.key.slice(-3)) > 98)).toHaveLength(10);
  });

  it('the target file registers icx-work as DESIGN §2 shows', () => {
    expect(JSON.parse(read('icx-work.target.json'))).toEqual(DEMO_WORK_TARGET);
  });
});
