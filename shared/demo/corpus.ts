/** The fixed demo corpus of DESIGN §2: every fact about it lives here. */

export const DEMO_PROTECTED = { corpus: 'ICX-CONST', count: 60, state: 'enacted', target: 'icx-const' } as const;
export const DEMO_WORKING = { corpus: 'ICX-WORK', count: 98, state: 'draft', target: 'icx-work' } as const;

/** ICX-WORK/007 style keys. */
export function demoKey(corpus: string, n: number): string {
  return `${corpus}/${String(n).padStart(3, '0')}`;
}

/** The body of a demo unit at a version; the seed and the demo snapshot agree through this. */
export function demoBody(key: string, version: number): string {
  return `${key}: demo information unit, text of version ${version}.`;
}

// One sha256-of-text for the whole code base: the staging code's.
export { sha256Hex } from '../snapshot/stage.js';

export interface DemoUnit {
  corpus: string;
  key: string;
  state: 'draft' | 'enacted';
  body: string;
}

/** The 158 units the seed loads, all at version 1. */
export function demoUnits(): DemoUnit[] {
  const units: DemoUnit[] = [];
  for (const spec of [DEMO_PROTECTED, DEMO_WORKING]) {
    for (let n = 1; n <= spec.count; n += 1) {
      const key = demoKey(spec.corpus, n);
      units.push({ corpus: spec.corpus, key, state: spec.state, body: demoBody(key, 1) });
    }
  }
  return units;
}

/** The demo snapshot for ICX-WORK: enact 001–040, revise 041–045, add 099–108 as drafts. */
export function demoSnapshotRecords(): { key: string; state: string; body: string }[] {
  const records: { key: string; state: string; body: string }[] = [];
  const k = (n: number) => demoKey(DEMO_WORKING.corpus, n);
  for (let n = 1; n <= 40; n += 1) records.push({ key: k(n), state: 'enacted', body: demoBody(k(n), 1) });
  for (let n = 41; n <= 45; n += 1) records.push({ key: k(n), state: 'draft', body: demoBody(k(n), 2) });
  for (let n = 99; n <= 108; n += 1) records.push({ key: k(n), state: 'draft', body: demoBody(k(n), 1) });
  return records;
}

/** The registration file for the working corpus. */
export const DEMO_WORK_TARGET = {
  name: DEMO_WORKING.target,
  corpus: DEMO_WORKING.corpus,
  owner: 'ops-team',
  protected: false,
  max_units: 500,
  allowed_transitions: ['new->draft', 'draft->enacted', 'revise'],
  notes: 'Demo working corpus: drafts that a cut may enact, revise or add to.',
};
