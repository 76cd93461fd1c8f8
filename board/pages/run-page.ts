import type { ApprovalSummary } from '../../shared/approval/summary.js';
import type { Check } from '../../shared/jobs/results.js';
import type { RunView } from '../../shared/runs/view.js';
import { ADMIN_BASE } from '../routes/admin.js';
import { badge, html, page, seconds, type Safe } from './html.js';
import { markdownToHtml } from './markdown.js';
import { planItemsSection, type PlanListing } from './plan-section.js';

/** What the run page shows; each part comes from Postgres. */
export interface RunPageData {
  view: RunView;
  approvals: ApprovalSummary | null;
  verification: { passed: boolean; checks: Check[] } | null;
  report: string | null;
  /** Whether the kill switch is on for this run (its EXEC grant armed it and execute has not yet turned it off). */
  switchOn: boolean;
  now: Date;
  /** A page of the plan's units, when the run has a plan. */
  planListing?: PlanListing;
}

function value(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? '';
}

/** When a phase finished, from its row (null while it runs). */
function finishedAt(p: RunView['phases'][number]): number | null {
  return p.started_utc && p.duration_ms !== null ? Date.parse(p.started_utc) + p.duration_ms : null;
}

/**
 * How long a live run waited for its approvals: from the plan's completion
 * to the gate's (or to now). The gate's own row only times its last, short
 * wake, which read as 0.00 s after a wait of hours.
 */
function approvalWait(view: RunView, now: Date): { ms: number; over: boolean } | null {
  const cutplan = view.phases.find((p) => p.phase === 'cutplan');
  const gate = view.phases.find((p) => p.phase === 'approval-gate');
  const planned = cutplan ? finishedAt(cutplan) : null;
  if (view.mode !== 'live' || planned === null) return null;
  const released = gate ? finishedAt(gate) : null;
  return { ms: (released ?? now.getTime()) - planned, over: released !== null };
}

/** "3 h 12 min" style duration. */
function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function timeline(view: RunView, now: Date): Safe {
  const wait = approvalWait(view, now);
  // Each phase links to its job in Bull Board (ids are `${runId}.${phase}`; the board asks for its credentials).
  const job = (phase: string) => `${ADMIN_BASE}/queue/${encodeURIComponent(phase)}/${encodeURIComponent(`${view.run_id}.${phase}`)}`;
  return html`<h2>Phases</h2><table id="phases"><thead><tr><th>#</th><th>phase</th><th>state</th><th>attempts</th><th>started</th><th>duration</th><th>error</th></tr></thead><tbody>
${view.phases.map(
  (p, i) => html`<tr data-phase="${p.phase}"><td>${i + 1}</td><td><a href="${job(p.phase)}" title="this job in Bull Board">${p.phase}</a></td><td>${badge(p.state)}</td><td>${p.attempts}</td>
<td>${p.started_utc ?? '—'}</td><td>${p.started_utc ? seconds(p.duration_ms) : '—'}${p.phase === 'approval-gate' && wait ? html` (waited ${span(wait.ms)} for approval)` : html``}</td><td class="error">${p.error ? `${p.error.code ?? ''} ${p.error.message}` : ''}</td></tr>`,
)}</tbody></table>`;
}

/** A revert's units left out because they changed after the run it reverts. */
function skipped(view: RunView): Safe {
  const s = view.revert_skipped;
  if (!s || s.count === 0) return html``;
  const more = s.count > s.units.length ? html`<p>… and ${s.count - s.units.length} more.</p>` : html``;
  return html`<h3>Skipped: changed after run ${view.revert_of ?? ''} (${s.count})</h3><table id="revert-skipped"><thead><tr><th>key</th><th>changed by run</th></tr></thead><tbody>
${s.units.map((u) => html`<tr><td>${u.key}</td><td>${u.changed_by_run ? html`<a href="/runs/${encodeURIComponent(u.changed_by_run)}">${u.changed_by_run}</a>` : html`(no run recorded)`}</td></tr>`)}
</tbody></table>${more}`;
}

function plan(view: RunView, listing: PlanListing | undefined): Safe {
  if (!view.plan) return html`<h2>Plan</h2><p>No plan yet.</p>${skipped(view)}`;
  const list = (o: Record<string, number>) => Object.entries(o).map(([k, n]) => html`<li>${k}: ${n}</li>`);
  return html`<h2>Plan</h2><table id="plan"><tbody>
<tr><th>plan_sha256</th><td><code>${view.plan.plan_sha256}</code></td></tr>
<tr><th>units</th><td>${view.plan.unit_count}</td></tr>
<tr><th>by op</th><td><ul>${list(view.plan.by_op)}</ul></td></tr>
<tr><th>by transition</th><td><ul>${list(view.plan.by_transition)}</ul></td></tr></tbody></table>${skipped(view)}${listing ? planItemsSection(view.run_id, listing) : html``}`;
}

/** What the sovereign runs for each gate still awaited, exactly. */
function signCommands(runId: string, gates: string[]): Safe {
  const file = (gate: string) => `${gate.toLowerCase().replace('_', '')}.json`;
  const lines = gates.map((g) => `cutter approval sign --gate ${g} --run ${runId} --key KEY.pem --out ${file(g)}\ncutter approval submit ${file(g)}`);
  return html`<p>To release it, the sovereign signs and submits:</p><pre id="sign-commands">${lines.join('\n')}</pre>`;
}

function approvals(view: RunView, a: ApprovalSummary | null, now: Date): Safe {
  // A dry run has no gate: nothing is awaited and nothing was signed.
  if (view.mode === 'dry' || !a) return html`<h2>Approvals</h2><p>None: a dry run has no approval gate.</p>`;
  const wait = approvalWait(view, now);
  const left = a.window_ends_utc ? Date.parse(a.window_ends_utc) - now.getTime() : null;
  const awaiting = view.status === 'awaiting_approval';
  const window = awaiting && left !== null
    ? html`<p id="window">Waiting for approval for ${span(wait?.ms ?? 0)}; <strong>${span(left)}</strong> left in the approval window (it ends ${a.window_ends_utc}, and the run then expires).</p>`
    : wait?.over
      ? html`<p id="window">Waited ${span(wait.ms)} for approval.</p>`
      : html``;
  const awaited = a.waiting_for.length
    ? html`<p>Awaited: <strong>${a.waiting_for.join(', ')}</strong> (SG_1 from ${a.quorum} key(s))</p>${signCommands(view.run_id, a.waiting_for)}`
    : html`<p>Nothing awaited.</p>`;
  const rows = a.decisions.length
    ? html`<table id="approvals"><thead><tr><th>gate</th><th>key</th><th>received</th><th>expires</th><th>consumed</th></tr></thead><tbody>
${a.decisions.map((d) => html`<tr><td>${d.gate}${d.reason === null ? html`` : html`: ${d.reason}`}</td><td>${d.key_name} <code>${d.key_id}</code></td><td>${d.received_utc}</td><td>${d.expires_utc}</td><td>${d.consumed_utc ?? '—'}</td></tr>`)}
</tbody></table>`
    : html`<p>No approvals received.</p>`;
  return html`<h2>Approvals</h2>${window}${awaited}<h3>Received</h3>${rows}`;
}

function verification(v: RunPageData['verification']): Safe {
  if (!v) return html`<h2>Verification (G8)</h2><p>Not verified yet.</p>`;
  return html`<h2>Verification (G8): ${badge(v.passed ? 'PASS' : 'FAIL')}</h2><table id="verification"><thead><tr><th>check</th><th>expected</th><th>actual</th><th>result</th></tr></thead><tbody>
${v.checks.map((c) => html`<tr><td>${c.name}</td><td><code>${value(c.expected)}</code></td><td><code>${value(c.actual)}</code></td><td>${badge(c.passed ? 'PASS' : 'FAIL')}</td></tr>`)}
</tbody></table>`;
}

function notifications(view: RunView): Safe {
  if (!view.notifications.length) return html`<h2>Notifications</h2><p>No webhook deliveries for this run.</p>`;
  return html`<h2>Notifications</h2><table id="notifications"><thead><tr><th>event</th><th>webhook-id</th><th>endpoint</th><th>state</th><th>attempts</th><th>last status</th><th>last error</th><th>next attempt</th><th>delivered</th></tr></thead><tbody>
${view.notifications.map(
  (n) => html`<tr data-event="${n.event}"><td>${n.event}</td><td><code>${n.webhook_id}</code></td><td>${n.endpoint} <code>${n.endpoint_id}</code></td><td>${badge(n.state)}</td><td>${n.attempts}</td>
<td>${n.last_status ?? '—'}</td><td>${n.last_error ?? ''}</td><td>${n.next_attempt_utc ?? '—'}</td><td>${n.delivered_utc ?? '—'}</td></tr>`,
)}</tbody></table>`;
}

/** The /runs/:id page: summary, timeline, plan, approvals, verification, notifications, report. */
export function runPage(d: RunPageData): string {
  const v = d.view;
  const head = html`<h1>Run <code>${v.run_id}</code></h1>
<table id="summary"><tbody><tr><th>target</th><td>${v.target} (corpus ${v.corpus})</td></tr>
<tr><th>mode</th><td>${v.mode}</td></tr>${v.revert_of ? html`<tr><th>revert of</th><td id="revert-of"><a href="/runs/${encodeURIComponent(v.revert_of)}">${v.revert_of}</a> (its plan is the inverse of what that run applied)</td></tr>` : html``}<tr><th>operator</th><td>${v.operator}</td></tr>
<tr><th>status</th><td class="error">${badge(v.status)}${v.failed_phase ? html` in ${v.failed_phase}` : html``}${v.error ? html`: ${v.error.code} ${v.error.message}` : html``}</td></tr>
<tr><th>verdict</th><td id="verdict">${badge(v.verdict)}</td></tr>
<tr><th>kill switch</th><td id="kill-switch">${d.switchOn ? html`<strong>on for this run</strong>: its EXEC grant armed it; execute turns it off when it commits (or the run ends)` : html`off for this run`}</td></tr>
<tr><th>created</th><td>${v.created_utc}</td></tr><tr><th>finished</th><td>${v.finished_utc ?? '—'}</td></tr></tbody></table>`;
  const md = `/runs/${encodeURIComponent(v.run_id)}/report?format=md`;
  const report = d.report
    ? html`<h2>Report</h2><p><a href="${md}">as markdown</a> · <a href="${md}&amp;download=1" download>download</a></p><div id="report">${markdownToHtml(d.report)}</div>`
    : html`<h2>Report</h2><p>No report yet.</p>`;
  return page(`Run ${v.run_id}`, html`${head}${timeline(v, d.now)}${plan(v, d.planListing)}${approvals(v, d.approvals, d.now)}${verification(d.verification)}${notifications(v)}${report}`);
}
