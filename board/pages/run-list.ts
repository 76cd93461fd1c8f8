import { RUN_STATUSES } from '../../shared/runs/status.js';
import type { RunListPage } from '../queries.js';
import { age, badge, html, page } from './html.js';

/** The filters a page of /runs was asked with; links to the next page keep them. */
export interface RunListFilters {
  status?: string;
  target?: string;
  limit: number;
}

/** The /runs page: runs newest first, filtered by status and target, a page at a time. */
export function runListPage(listed: RunListPage, filters: RunListFilters, now = new Date()): string {
  const { rows, next } = listed;
  const filter = html`<form method="get" action="/runs">Status:
    <select name="status"><option value="">any</option>${RUN_STATUSES.map((s) =>
      s === filters.status ? html`<option value="${s}" selected>${s}</option>` : html`<option value="${s}">${s}</option>`,
    )}</select> Target: <input name="target" value="${filters.target ?? ''}" size="20"> <button type="submit">Filter</button></form>`;
  const body = rows.length
    ? html`<table id="runs"><thead><tr><th>run</th><th>target</th><th>mode</th><th>status</th><th>verdict</th><th>age</th></tr></thead><tbody>
${rows.map(
  (r) => html`<tr><td><a href="/runs/${encodeURIComponent(r.run_id)}">${r.run_id}</a></td><td>${r.target}</td><td>${r.mode}</td>
<td>${badge(r.status)}${r.phase && r.status !== 'succeeded' ? html` (${r.phase})` : html``}</td><td>${badge(r.verdict)}</td>
<td title="${r.created_at.toISOString()}">${age(r.created_at, now)}</td></tr>`,
)}</tbody></table>`
    : html`<p>No runs${filters.status ? html` with status ${filters.status}` : html``}${filters.target ? html` of target ${filters.target}` : html``}.</p>`;
  const params = (after: string) => new URLSearchParams({ ...(filters.status ? { status: filters.status } : {}), ...(filters.target ? { target: filters.target } : {}), limit: String(filters.limit), after }).toString();
  const more = next ? html`<p><a id="next-page" href="/runs?${params(next)}">older runs →</a></p>` : html``;
  return page('Runs', html`<h1>Runs</h1>${filter}${body}${more}`);
}
