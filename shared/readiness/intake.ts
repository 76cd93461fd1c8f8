import type { Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { checkC6 } from '../plan/build.js';
import { runAllowance, type RunAllowance } from '../plan/run-allowance.js';
import { formatIssue, SnapshotInvalidError } from '../snapshot/issues.js';
import { validateSnapshot } from '../snapshot/validate.js';
import { checkC2, checkC3, checkC4, type CriterionResult } from '../targets/criteria.js';
import { parseRegistration } from '../targets/registration.js';
import { getTarget, listTargets, type TargetRecord } from '../targets/registry.js';
import { previewPlanScope } from './plan-scope.js';
import { completedResult } from '../runs/store.js';
import { readOnly } from './read-only.js';
import { phaseDone, type RunContext } from './run-context.js';
import { blocker, messageOf, type BlockerDraft, type CriterionRow, type PackageResult } from './types.js';

/**
 * Target intake, C1–C7 together (DESIGN §2), for a live run. C5 and C6 come
 * from the run when one is named (its staged snapshot, its frozen plan),
 * else from --snapshot, parsed without staging and diffed read-only.
 */

export const TARGET_INTAKE = 'target intake';

export interface IntakeInput {
  targetName: string | null;
  /** An explicit --snapshot, already known to exist. */
  snapshot: string | null;
  run: RunContext | null;
  /** The backup runner's verdict, which is C7. */
  backupOk: boolean;
}

export interface IntakeResult {
  result: PackageResult;
  criteria: CriterionRow[];
  target: TargetRecord | null;
}

const row = (c: CriterionResult): CriterionRow => ({ id: c.id, status: c.pass ? 'PASS' : 'FAIL', reason: c.reason });
const notChecked = (id: CriterionRow['id'], reason: string): CriterionRow => ({ id, status: 'NOT CHECKED', reason });

/** C1–C7 for the target, each with the blocker that clears a failure. */
export async function checkTargetIntake(pool: Pool, input: IntakeInput): Promise<IntakeResult> {
  const c7: CriterionRow = input.backupOk
    ? { id: 'C7', status: 'PASS', reason: 'the backup selftest passes (see backup runner)' }
    : { id: 'C7', status: 'FAIL', reason: 'the backup selftest fails (see backup runner and its blockers)' };
  const blockers: BlockerDraft[] = [];
  try {
    if (!input.targetName) {
      const names = (await readOnly(pool, (c) => listTargets(c))).map((t) => t.name);
      blockers.push(blocker('operator', `the target of the first live run named with --target T (registered: ${names.join(', ') || 'none'})`, 'no --target or --run was given, so C1–C6 have no target to be checked for', { gap: 'C1' }));
      const criteria = (['C1', 'C2', 'C3', 'C4', 'C5', 'C6'] as const).map((id) => notChecked(id, 'no target given'));
      return finish([...criteria, c7], blockers, null);
    }
    const name = input.targetName;
    return await readOnly(pool, async (client) => {
      const target = await getTarget(client, name);
      if (!target) {
        blockers.push(blocker('operator', `target ${name} registered: cutter target register --file ${name}.json`, `no target named ${name} is registered`, { gap: 'C1' }));
        const rest = (['C2', 'C3', 'C4', 'C5', 'C6'] as const).map((id) => notChecked(id, 'C1 failed'));
        return finish([{ id: 'C1', status: 'FAIL', reason: `target ${name} is not registered` }, ...rest, c7], blockers, null);
      }
      const criteria: CriterionRow[] = [c1(target, blockers)];
      const c2 = await checkC2(client, target);
      if (!c2.pass) blockers.push(blocker('operator', `units in corpus ${target.corpus}, or target ${name} re-registered with "allow_empty_corpus": true`, c2.reason, { gap: 'C2' }));
      const c3 = await checkC3(client, target, 'live');
      if (!c3.pass) blockers.push(blocker('operator', `a target whose corpus is not protected: ${name} allows dry runs only`, c3.reason, { gap: 'C3' }));
      const c4 = await checkC4(client, target.corpus, input.run ? { runId: input.run.run.run_id } : {});
      if (!c4.pass) blockers.push(blocker('operator', `corpus ${target.corpus} free: the run holding it finished, failed or expired`, c4.reason, { gap: 'C4' }));
      criteria.push(row(c2), row(c3), row(c4));

      const snapshot = input.snapshot ?? (input.run && !phaseDone(input.run, 'discover') ? input.run.run.snapshot_path : null);
      let c5: CriterionRow;
      const revertOf = input.run?.run.revert_of ?? null;
      if (input.run && phaseDone(input.run, 'discover') && !input.snapshot) {
        const staged = completedResult(input.run.phases, 'discover');
        c5 = { id: 'C5', status: 'PASS', reason: `run ${input.run.run.run_id}'s discover phase parsed and staged its ${revertOf ? `input (the inverse of run ${revertOf})` : 'snapshot'} (${staged?.records ?? '?'} records)` };
      } else if (revertOf !== null && !input.snapshot) {
        c5 = notChecked('C5', `run ${input.run?.run.run_id ?? ''} reverts run ${revertOf}: its discover phase computes and checks its input`);
      } else if (snapshot) {
        c5 = await checkC5(snapshot, target.corpus, blockers);
      } else {
        c5 = notChecked('C5', 'no snapshot given');
      }
      criteria.push(c5);

      let c6: CriterionRow;
      if (input.run?.plan && !input.snapshot) {
        const plan = input.run.plan;
        const held = await runAllowance(client, input.run.run.run_id, target);
        c6 = allowance(target, plan, `run ${input.run.run.run_id}'s frozen plan ${plan.plan_sha256}`, blockers, held);
      } else if (snapshot && c5.status === 'PASS') {
        const scope = await previewPlanScope(client, snapshot, target.corpus);
        if (scope.forbiddenTotal > 0) {
          const moves = scope.forbidden.map((f) => `${f.key} ${f.move}`).join(', ');
          c6 = { id: 'C6', status: 'FAIL', reason: `the snapshot asks for ${scope.forbiddenTotal} forbidden transition(s): ${moves}` };
          blockers.push(blocker('operator', `a snapshot without forbidden transitions (never out of retired, never enacted->draft, never created retired)`, c6.reason, { gap: 'C6' }));
        } else c6 = allowance(target, scope.counts, 'the plan of the snapshot (computed read-only, not frozen)', blockers);
      } else {
        c6 = notChecked('C6', c5.status === 'FAIL' ? 'C5 failed' : 'no snapshot given');
      }
      criteria.push(c6);
      if (c5.status === 'NOT CHECKED' && revertOf === null) {
        blockers.push(blocker('operator', 'the snapshot of the first live run given as --snapshot FILE, so C5 and C6 can be checked', 'no snapshot was given and no run names one', { gap: 'C5' }));
      }
      return finish([...criteria, c7], blockers, target);
    });
  } catch (err) {
    return { result: { name: TARGET_INTAKE, runnable: 'NO', verified: 'not checked', checks: [], blockers: [], failure: `target intake: ${messageOf(err)}` }, criteria: [], target: null };
  }
}

/** C1 for a registered target: its stored registration is still complete and valid. */
function c1(target: TargetRecord, blockers: BlockerDraft[]): CriterionRow {
  const parsed = parseRegistration({
    name: target.name,
    corpus: target.corpus,
    owner: target.owner,
    protected: target.protected,
    max_units: target.maxUnits,
    allowed_transitions: target.allowedTransitions,
    allow_empty_corpus: target.allowEmptyCorpus,
    notes: target.notes,
  });
  if (parsed.ok) {
    return { id: 'C1', status: 'PASS', reason: `target ${target.name} is registered (by ${target.registeredBy}, ${target.registeredUtc.toISOString()}) and its registration is complete and valid` };
  }
  const reason = `the registration of ${target.name} is not valid: ${parsed.problems.join('; ')}`;
  blockers.push(blocker('operator', `target ${target.name} registered again with a complete, valid registration file`, reason, { gap: 'C1' }));
  return { id: 'C1', status: 'FAIL', reason };
}

async function checkC5(path: string, corpus: string, blockers: BlockerDraft[]): Promise<CriterionRow> {
  try {
    const s = await validateSnapshot(path, { corpus, maxErrors: 5 });
    return { id: 'C5', status: 'PASS', reason: `${path} parses cleanly (parsed without staging): ${s.records} record(s), ${s.bytes} bytes, every key valid and unique` };
  } catch (err) {
    if (err instanceof SnapshotInvalidError) {
      const issues = err.issues.map(formatIssue).join('; ');
      const reason = `${path} is invalid (${err.issues.length}${err.stoppedEarly ? '+' : ''} issue(s)): ${issues}`;
      blockers.push(blocker('operator', `a snapshot that parses cleanly: fix ${path} (${issues})`, reason, { gap: 'C5' }));
      return { id: 'C5', status: 'FAIL', reason };
    }
    if (err instanceof CutterError && err.kind === 'bad_input') {
      blockers.push(blocker('operator', `the snapshot file ${path} readable again (the run reads it in discover)`, err.message, { gap: 'C5' }));
      return { id: 'C5', status: 'FAIL', reason: err.message };
    }
    throw err;
  }
}

function allowance(
  target: TargetRecord,
  counts: { unit_count: number; by_op: Record<string, number>; by_transition: Record<string, number> },
  what: string,
  blockers: BlockerDraft[],
  held?: RunAllowance,
): CriterionRow {
  const kinds = Object.keys(counts.by_transition);
  try {
    checkC6(target, counts, held);
    return {
      id: 'C6',
      status: 'PASS',
      reason: `${what}: ${counts.unit_count} unit(s), within max_units ${target.maxUnits}; ${kinds.length ? `transitions ${kinds.join(', ')} allowed` : 'no transitions'}`,
    };
  } catch (err) {
    const reason = `${what}: ${messageOf(err).replace(/^C6: /, '')}`;
    blockers.push(blocker('operator', `a snapshot within target ${target.name}'s allowance (max_units ${target.maxUnits}; transitions ${target.allowedTransitions.join(', ')}), or ${target.name} registered with a larger one`, reason, { gap: 'C6' }));
    return { id: 'C6', status: 'FAIL', reason };
  }
}

function finish(criteria: CriterionRow[], blockers: BlockerDraft[], target: TargetRecord | null): IntakeResult {
  const failed = criteria.filter((c) => c.status === 'FAIL').map((c) => c.id);
  const open = criteria.filter((c) => c.status === 'NOT CHECKED').map((c) => c.id);
  // Without a target there is nothing the criteria could be complete for.
  const runnable = failed.length || !target ? 'NO' : open.length ? 'SPEC-COMPLETE' : 'YES';
  const verified =
    `C1–C7 checked read-only for ${target ? `target ${target.name} (corpus ${target.corpus})` : 'no target'}, as for a live run: ` +
    `${criteria.filter((c) => c.status === 'PASS').length} pass` +
    (failed.length ? `, ${failed.join(', ')} fail` : '') +
    (open.length ? `, ${open.join(', ')} not checked` : '');
  return {
    result: { name: TARGET_INTAKE, runnable, verified, checks: criteria.map((c) => `${c.id} ${c.status}: ${c.reason}`), blockers, failure: null },
    criteria,
    target,
  };
}
