import { RUN_STATUSES } from '../../shared/runs/status.js';
import type { RunListRow } from '../queries.js';
import { age, badge, html, page } from './html.js';

/** The /runs page: recent runs with a status filter. */
export function runListPage(rows: RunListRow[], status: string | undefined, now = new Date()): string {
  const filter = html`<form method="get" action="/runs">Status:
    <select name="status"><option value="">any</option>${RUN_STATUSES.map((s) =>
      s === status ? html`<option value="${s}" selected>${s}</option>` : html`<option value="${s}">${s}</option>`,
    )}</select> <button type="submit">Filter</button></form>`;
  const body = rows.length
    ? html`<table id="runs"><thead><tr><th>run</th><th>target</th><th>mode</th><th>status</th><th>verdict</th><th>age</th></tr></thead><tbody>
${rows.map(
  (r) => html`<tr><td><a href="/runs/${encodeURIComponent(r.run_id)}">${r.run_id}</a></td><td>${r.target}</td><td>${r.mode}</td>
<td>${badge(r.status)}${r.phase && r.status !== 'succeeded' ? html` (${r.phase})` : html``}</td><td>${badge(r.verdict)}</td>
<td title="${r.created_at.toISOString()}">${age(r.created_at, now)}</td></tr>`,
)}</tbody></table>`
    : html`<p>No runs${status ? html` with status ${status}` : html``}.</p>`;
  return page('Runs', html`<h1>Runs</h1>${filter}${body}`);
}
