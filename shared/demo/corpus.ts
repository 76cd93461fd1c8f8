/** The fixed demo corpus of DESIGN §2 and the history that made it: every fact about it lives here. */

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
  state: 'draft';
  body: string;
}

/**
 * The 158 units of the seed's import, every one a draft at version 1: the
 * state before the history (DEMO_HISTORY) enacted and revised ICX-CONST.
 */
export function demoUnits(): DemoUnit[] {
  const units: DemoUnit[] = [];
  for (const spec of [DEMO_PROTECTED, DEMO_WORKING]) {
    for (let n = 1; n <= spec.count; n += 1) {
      const key = demoKey(spec.corpus, n);
      units.push({ corpus: spec.corpus, key, state: 'draft', body: demoBody(key, 1) });
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

/** A snapshot record of the demo files (NDJSON, one a line). */
export interface DemoRecord {
  key: string;
  state: string;
  body: string;
}

const constKey = (n: number) => demoKey(DEMO_PROTECTED.corpus, n);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** ICX-CONST units the enactment revised as it enacted them (version 2), and those the rehearsed amendment would revise. */
export const ENACTMENT_REVISED = range(54, 60);
export const AMENDMENT_REVISED = range(10, 14);

/**
 * The history `cutter demo seed` replays after its import (DESIGN §2, the
 * demo corpus), in order. Each run names its target, mode and snapshot file
 * (under demo/history/). Run 1 enacts ICX-CONST through a target registered
 * for that one enactment, under a quorum of two SG_1 signers; icx-const is
 * registered protected after it, which protects the corpus from then on
 * (C3 counts any protected target of a corpus); run 2 rehearses an
 * amendment of the protected corpus (a dry run is allowed there).
 */
export const DEMO_HISTORY = {
  enactmentTarget: {
    name: 'icx-const-enactment',
    corpus: DEMO_PROTECTED.corpus,
    owner: 'constitution-office',
    protected: false,
    max_units: DEMO_PROTECTED.count,
    allowed_transitions: ['draft->enacted', 'revise'],
    notes: 'Demo history: the one enactment of ICX-CONST (run-demo-history-1). icx-const protects the corpus since, so this target can no longer cut live.',
  },
  protectedTarget: {
    name: DEMO_PROTECTED.target,
    corpus: DEMO_PROTECTED.corpus,
    owner: 'constitution-office',
    protected: true,
    max_units: DEMO_PROTECTED.count,
    allowed_transitions: ['revise'],
    notes: 'Demo protected corpus: never cut live.',
  },
  enactment: {
    runId: 'run-demo-history-1',
    target: 'icx-const-enactment',
    mode: 'live',
    snapshot: 'icx-const-enactment.snapshot.ndjson',
    /** SOVEREIGN_QUORUM when it ran: two distinct keys gave SG_1, one the EXEC grant. */
    quorum: 2,
  },
  amendment: {
    runId: 'run-demo-history-2',
    target: DEMO_PROTECTED.target,
    mode: 'dry',
    snapshot: 'icx-const-amendment.snapshot.ndjson',
    quorum: 1,
  },
} as const;

/** Run 1's snapshot: every ICX-CONST unit enacted, ENACTMENT_REVISED with the text of version 2. */
export function enactmentSnapshotRecords(): DemoRecord[] {
  return range(1, DEMO_PROTECTED.count).map((n) => ({
    key: constKey(n),
    state: 'enacted',
    body: demoBody(constKey(n), ENACTMENT_REVISED.includes(n) ? 2 : 1),
  }));
}

/** Run 2's snapshot: AMENDMENT_REVISED, enacted, with the text of version 2 (rehearsed, never applied). */
export function amendmentSnapshotRecords(): DemoRecord[] {
  return AMENDMENT_REVISED.map((n) => ({ key: constKey(n), state: 'enacted', body: demoBody(constKey(n), 2) }));
}
