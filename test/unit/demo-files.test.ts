import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AMENDMENT_REVISED,
  DEMO_HISTORY,
  DEMO_WORK_TARGET,
  ENACTMENT_REVISED,
  amendmentSnapshotRecords,
  demoSnapshotRecords,
  enactmentSnapshotRecords,
} from '../../shared/demo/corpus.js';
import { demoFile } from '../../shared/demo/files.js';

const read = (name: string) => readFileSync(new URL(`../../demo/${name}`, import.meta.url), 'utf8');
const records = (name: string) => read(name).trimEnd().split('\n').map((l) => JSON.parse(l) as { key: string; state: string; body: string });

describe('demo files', () => {
  it('the snapshot enacts 40, revises 5 and adds 10 ICX-WORK units', () => {
    const lines = records('icx-work.snapshot.ndjson');
    expect(lines).toEqual(demoSnapshotRecords());
    expect(lines.filter((r) => r.state === 'enacted')).toHaveLength(40);
    expect(lines.filter((r) => r.body.endsWith('version 2.'))).toHaveLength(5);
    expect(lines.filter((r) => Number(r.key.slice(-3)) > 98)).toHaveLength(10);
  });

  it('the target file registers icx-work as DESIGN §2 shows', () => {
    expect(JSON.parse(read('icx-work.target.json'))).toEqual(DEMO_WORK_TARGET);
  });

  it('the history snapshots: run 1 enacts all 60 ICX-CONST units and revises 7 of them; run 2 revises 5', () => {
    const enactment = records(`history/${DEMO_HISTORY.enactment.snapshot}`);
    expect(enactment).toEqual(enactmentSnapshotRecords());
    expect(enactment.map((r) => r.key)).toEqual(Array.from({ length: 60 }, (_, i) => `ICX-CONST/${String(i + 1).padStart(3, '0')}`));
    expect(enactment.every((r) => r.state === 'enacted')).toBe(true);
    expect(enactment.filter((r) => r.body.endsWith('version 2.')).map((r) => Number(r.key.slice(-3)))).toEqual(ENACTMENT_REVISED);
    expect(ENACTMENT_REVISED).toHaveLength(7);
    const amendment = records(`history/${DEMO_HISTORY.amendment.snapshot}`);
    expect(amendment).toEqual(amendmentSnapshotRecords());
    expect(amendment.map((r) => Number(r.key.slice(-3)))).toEqual(AMENDMENT_REVISED);
  });

  it('demoFile finds the demo folder from the source tree', () => {
    expect(readFileSync(demoFile('icx-work.target.json'), 'utf8')).toBe(read('icx-work.target.json'));
  });
});
