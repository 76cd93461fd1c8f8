import type { Readiness } from './types.js';

/**
 * The JSON rendering (README "cutter readiness --format json"): one object,
 * snake_case keys, the same content as the markdown. Keys are listed here
 * once so their order is stable whatever order the checks filled them in.
 */
export function renderReadinessJson(r: Readiness): string {
  const ordered = {
    g8: r.g8,
    g8_reason: r.g8_reason,
    ready_for_live_run: r.ready_for_live_run,
    production_mutation: r.production_mutation,
    execution_enabled: r.execution_enabled,
    started_utc: r.started_utc,
    finished_utc: r.finished_utc,
    scope: r.scope,
    db_state: r.db_state,
    baseline: r.baseline,
    packages: r.packages,
    criteria: r.criteria,
    blockers: r.blockers.map((b) => ({ id: b.id, gap: b.gap, owners: b.owners, form: b.form, package: b.package, blocking: b.blocking, why: b.why, attachment: b.attachment })),
    first_run_path: r.first_run_path,
    failures: r.failures,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}
