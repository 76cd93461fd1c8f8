import type { Pool, PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { findCorpusLock } from './lock.js';
import type { TargetRecord } from './registry.js';

/**
 * The target intake criteria of DESIGN §2 that need the database (C2–C4).
 * Each check returns a verdict with a reason a person can act on; callers
 * decide whether a failure stops them (register, plan, the run's phases).
 */

export type CriterionId = 'C1' | 'C2' | 'C3' | 'C4' | 'C5' | 'C6' | 'C7';

export interface CriterionResult {
  id: CriterionId;
  pass: boolean;
  reason: string;
}

type Db = Pool | PoolClient;

/** C2: the corpus has at least one unit, unless the target allows an empty corpus. */
export async function checkC2(db: Db, target: Pick<TargetRecord, 'corpus' | 'allowEmptyCorpus'>): Promise<CriterionResult> {
  const result = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM public.information_unit WHERE corpus = $1', [target.corpus]);
  const units = result.rows[0]?.n ?? 0;
  if (units > 0) return { id: 'C2', pass: true, reason: `corpus ${target.corpus} has ${units} unit(s)` };
  if (target.allowEmptyCorpus) {
    return { id: 'C2', pass: true, reason: `corpus ${target.corpus} has no units, and the target allows an empty corpus` };
  }
  return {
    id: 'C2',
    pass: false,
    reason: `corpus ${target.corpus} has no units: check the corpus name, or register with "allow_empty_corpus": true`,
  };
}

async function protectingTargets(db: Db, corpus: string, except: string): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    'SELECT name FROM cutter_governance.target_registry WHERE corpus = $1 AND protected AND name <> $2 ORDER BY name',
    [corpus, except],
  );
  return result.rows.map((r) => r.name);
}

/**
 * C3 for a run or a plan: a protected corpus is never cut live. The corpus
 * counts as protected when this target, or any other target registered for
 * the same corpus, is protected. A dry run writes nothing, so it passes.
 */
export async function checkC3(
  db: Db,
  target: Pick<TargetRecord, 'name' | 'corpus' | 'protected'>,
  mode: 'live' | 'dry',
): Promise<CriterionResult> {
  const others = await protectingTargets(db, target.corpus, target.name);
  const by = target.protected ? `target ${target.name} is protected` : others.length ? `corpus ${target.corpus} is protected by target ${others.join(', ')}` : null;
  if (by === null) return { id: 'C3', pass: true, reason: `target ${target.name} and corpus ${target.corpus} are not protected` };
  if (mode === 'dry') return { id: 'C3', pass: true, reason: `${by}; allowed because a dry run writes nothing` };
  return { id: 'C3', pass: false, reason: `${by}: a protected corpus is never cut live (a dry run is allowed)` };
}

/** C3 as a refusal (C3_PROTECTED): the one check enqueue, precheck and the plan make before a run may cut. */
export async function requireC3(db: Db, target: Pick<TargetRecord, 'name' | 'corpus' | 'protected'>, mode: 'live' | 'dry'): Promise<void> {
  const c3 = await checkC3(db, target, mode);
  if (!c3.pass) throw new CutterError('C3_PROTECTED', `C3: ${c3.reason}`, { kind: 'refused' });
}

/**
 * C3 at registration: the new target may be protected (its live runs will be
 * refused), but it may not open a corpus that another target protects.
 */
export async function checkC3Registration(
  db: Db,
  reg: { name: string; corpus: string; protected: boolean },
): Promise<CriterionResult> {
  if (reg.protected) {
    return { id: 'C3', pass: true, reason: `registered as protected: live runs of ${reg.name} will be refused, dry runs allowed` };
  }
  const others = await protectingTargets(db, reg.corpus, reg.name);
  if (others.length) {
    return {
      id: 'C3',
      pass: false,
      reason: `corpus ${reg.corpus} is protected by target ${others.join(', ')}: a target for it must be registered with "protected": true`,
    };
  }
  return { id: 'C3', pass: true, reason: `corpus ${reg.corpus} is not protected by any target` };
}

/** C4: no other active run holds the corpus lock (a lock left by a finished run does not count). */
export async function checkC4(db: Db, corpus: string, options: { runId?: string } = {}): Promise<CriterionResult> {
  const lock = await findCorpusLock(db, corpus);
  if (!lock) return { id: 'C4', pass: true, reason: `no run holds corpus ${corpus}` };
  if (lock.runId === options.runId) return { id: 'C4', pass: true, reason: `corpus ${corpus} is held by this run` };
  if (!lock.active) {
    return { id: 'C4', pass: true, reason: `corpus ${corpus} has a stale lock of finished run ${lock.runId} (${lock.status}); it will be taken over` };
  }
  return {
    id: 'C4',
    pass: false,
    reason: `corpus ${corpus} is held by run ${lock.runId} (${lock.status}, since ${lock.acquiredAt.toISOString()}): wait for it to finish, or cancel it (cutter cancel ${lock.runId} --reason TEXT)`,
  };
}

/** One line per criterion, as the CLI prints them. */
export function formatCriterion(c: CriterionResult): string {
  return `${c.id} ${c.pass ? 'PASS' : 'FAIL'} ${c.reason}`;
}
