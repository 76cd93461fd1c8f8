import type { ApprovalSummary } from '../../shared/approval/summary.js';
import type { Check } from '../../shared/jobs/results.js';
import type { RunView } from '../../shared/runs/view.js';
import { badge, html, page, seconds, type Safe } from './html.js';
import { planItemsSection, type PlanListing } from './plan-section.js';

/** What the run page shows; each part comes from Postgres. */
export interface RunPageData {
  view: RunView;
  approvals: ApprovalSummary | null;
  verification: { passed: boolean; checks: Check[] } | null;
  report: string | null;
  /** A page of the plan's units, when the run has a plan. */
  planListing?: PlanListing;
}

function value(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? '';
}

function timeline(view: RunView): Safe {
  return html`<h2>Phases</h2><table id="phases"><thead><tr><th>#</th><th>phase</th><th>state</th><th>attempts</th><th>started</th><th>duration</th><th>error</th></tr></thead><tbody>
${view.phases.map(
  (p, i) => html`<tr data-phase="${p.phase}"><td>${i + 1}</td><td>${p.phase}</td><td>${badge(p.state)}</td><td>${p.attempts}</td>
<td>${p.started_utc ?? '—'}</td><td>${p.started_utc ? seconds(p.duration_ms) : '—'}</td><td>${p.error ? `${p.error.code ?? ''} ${p.error.message}` : ''}</td></tr>`,
)}</tbody></table>`;
}

function plan(view: RunView, listing: PlanListing | undefined): Safe {
  if (!view.plan) return html`<h2>Plan</h2><p>No plan yet.</p>`;
  const list = (o: Record<string, number>) => Object.entries(o).map(([k, n]) => html`<li>${k}: ${n}</li>`);
  return html`<h2>Plan</h2><table id="plan"><tbody>
<tr><th>plan_sha256</th><td><code>${view.plan.plan_sha256}</code></td></tr>
<tr><th>units</th><td>${view.plan.unit_count}</td></tr>
<tr><th>by op</th><td><ul>${list(view.plan.by_op)}</ul></td></tr>
<tr><th>by transition</th><td><ul>${list(view.plan.by_transition)}</ul></td></tr></tbody></table>${listing ? planItemsSection(view.run_id, listing) : html``}`;
}

function approvals(view: RunView, a: ApprovalSummary | null): Safe {
  // A dry run has no gate: nothing is awaited and nothing was signed.
  if (view.mode === 'dry' || !a) return html`<h2>Approvals</h2><p>None: a dry run has no approval gate.</p>`;
  const awaited = a.waiting_for.length ? html`<p>Awaited: <strong>${a.waiting_for.join(', ')}</strong> (quorum ${a.quorum}${a.window_ends_utc ? html`, window ends ${a.window_ends_utc}` : html``})</p>` : html`<p>Nothing awaited.</p>`;
  const rows = a.decisions.length
    ? html`<table id="approvals"><thead><tr><th>gate</th><th>key</th><th>received</th><th>expires</th><th>consumed</th></tr></thead><tbody>
${a.decisions.map((d) => html`<tr><td>${d.gate}</td><td>${d.key_name} <code>${d.key_id}</code></td><td>${d.received_utc}</td><td>${d.expires_utc}</td><td>${d.consumed_utc ?? '—'}</td></tr>`)}
</tbody></table>`
    : html`<p>No approvals received.</p>`;
  return html`<h2>Approvals</h2>${awaited}${rows}`;
}

function verification(v: RunPageData['verification']): Safe {
  if (!v) return html`<h2>Verification (G8)</h2><p>Not verified yet.</p>`;
  return html`<h2>Verification (G8): ${badge(v.passed ? 'PASS' : 'FAIL')}</h2><table id="verification"><thead><tr><th>check</th><th>expected</th><th>actual</th><th>result</th></tr></thead><tbody>
${v.checks.map((c) => html`<tr><td>${c.name}</td><td><code>${value(c.expected)}</code></td><td><code>${value(c.actual)}</code></td><td>${badge(c.passed ? 'PASS' : 'FAIL')}</td></tr>`)}
</tbody></table>`;
}

/** The /runs/:id page: timeline, plan, approvals, verification, report. */
export function runPage(d: RunPageData): string {
  const v = d.view;
  const head = html`<h1>Run <code>${v.run_id}</code></h1>
<table id="summary"><tbody><tr><th>target</th><td>${v.target} (corpus ${v.corpus})</td></tr>
<tr><th>mode</th><td>${v.mode}</td></tr><tr><th>operator</th><td>${v.operator}</td></tr>
<tr><th>status</th><td>${badge(v.status)}${v.failed_phase ? html` in ${v.failed_phase}` : html``}${v.error ? html`: ${v.error.code} ${v.error.message}` : html``}</td></tr>
<tr><th>verdict</th><td id="verdict">${badge(v.verdict)}</td></tr>
<tr><th>created</th><td>${v.created_utc}</td></tr><tr><th>finished</th><td>${v.finished_utc ?? '—'}</td></tr></tbody></table>`;
  const report = d.report
    ? html`<h2>Report</h2><p><a href="/runs/${encodeURIComponent(v.run_id)}/report?format=md">as markdown</a></p><pre id="report">${d.report}</pre>`
    : html`<h2>Report</h2><p>No report yet.</p>`;
  return page(`Run ${v.run_id}`, html`${head}${timeline(v)}${plan(v, d.planListing)}${approvals(v, d.approvals)}${verification(d.verification)}${report}`);
}
