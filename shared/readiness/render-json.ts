import type { Readiness } from './types.js';

/**
 * The JSON rendering (README "cutter readiness --format json"): one object,
 * snake_case keys, the report itself. Keys are listed here once so their
 * order is stable whatever order the checks filled them in.
 */
export function renderReadinessJson(r: Readiness): string {
  const ordered = {
    verdict: r.verdict,
    verdict_reason: r.verdict_reason,
    started_utc: r.started_utc,
    finished_utc: r.finished_utc,
    scope: r.scope,
    db_state: r.db_state,
    packages: r.packages,
    criteria: r.criteria,
    blockers: r.blockers.map((b) => ({ id: b.id, owner: b.owner, form: b.form, blocking: b.blocking, package: b.package, why: b.why, attachment: b.attachment })),
    failures: r.failures,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}
