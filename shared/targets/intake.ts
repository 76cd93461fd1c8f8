import { appendAudit } from '../audit/append.js';
import { isPgError } from '../db/errors.js';
import { withTransaction, type Pool } from '../db/pool.js';
import { checkC2, checkC3Registration, checkC4, type CriterionResult } from './criteria.js';
import { parseRegistrationText } from './registration.js';
import { getTarget, insertTarget, type TargetRecord } from './registry.js';

export interface IntakeResult {
  /** C1–C4 in order; a criterion that could not be checked because C1 failed is absent. */
  criteria: CriterionResult[];
  /** The new registration, or null when a criterion failed. */
  target: TargetRecord | null;
}

/**
 * `cutter target register`: C1 on the file's text, then C2–C4 against the
 * database, and the insert (with its audit event) only when all four pass.
 * Checks and insert share one transaction so the verdict printed is the one
 * the insert was made under.
 */
export async function registerTarget(pool: Pool, fileText: string, operator: string): Promise<IntakeResult> {
  const parsed = parseRegistrationText(fileText);
  if (!parsed.ok) {
    return { criteria: [{ id: 'C1', pass: false, reason: `registration file invalid: ${parsed.problems.join('; ')}` }], target: null };
  }
  const reg = parsed.value;
  return withTransaction(pool, async (client) => {
    const existing = await getTarget(client, reg.name);
    const c1: CriterionResult = existing
      ? {
          id: 'C1',
          pass: false,
          reason: `target ${reg.name} is already registered (corpus ${existing.corpus}, by ${existing.registeredBy} at ${existing.registeredUtc.toISOString()})`,
        }
      : { id: 'C1', pass: true, reason: 'registration file complete and valid' };
    const criteria = [
      c1,
      await checkC2(client, { corpus: reg.corpus, allowEmptyCorpus: reg.allow_empty_corpus }),
      await checkC3Registration(client, reg),
      await checkC4(client, reg.corpus),
    ];
    if (criteria.some((c) => !c.pass)) return { criteria, target: null };
    let target: TargetRecord;
    try {
      target = await insertTarget(client, reg, operator);
    } catch (err) {
      // Registered by someone else between our check and our insert.
      if (!isPgError(err, '23505')) throw err;
      criteria[0] = { id: 'C1', pass: false, reason: `target ${reg.name} was registered concurrently by another session` };
      return { criteria, target: null };
    }
    await appendAudit(client, {
      actor: operator,
      kind: 'target.register',
      detail: { name: target.name, corpus: target.corpus, protected: target.protected, max_units: target.maxUnits },
    });
    return { criteria, target };
  });
}
