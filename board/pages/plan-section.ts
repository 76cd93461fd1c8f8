import { PLAN_OP_FILTERS, type PlanPage, type PlanQuery } from '../../shared/plan/plan-items.js';
import { html, type Safe } from './html.js';

/**
 * The run page's list of plan items: a filter form (op, key prefix), one
 * page of items each linking to its unit view, and links to the first and
 * next pages. The pages are keyset pages by key (the `after` cursor), so a
 * link stays right however far into a big plan it points.
 */

/** Items per page on the run page. */
export const RUN_PAGE_PLAN_LIMIT = 50;

/** What the section shows: the page read with the query, or why the query was refused. */
export type PlanListing = { query: PlanQuery; page: PlanPage } | { error: string };

function link(runId: string, q: { op?: string | undefined; key?: string | undefined; after?: string | undefined }): string {
  const params = new URLSearchParams();
  if (q.op) params.set('op', q.op);
  if (q.key) params.set('key', q.key);
  if (q.after) params.set('after', q.after);
  const search = params.toString();
  return `/runs/${encodeURIComponent(runId)}${search ? `?${search}` : ''}#plan-items`;
}

/** The items part of the Plan section. */
export function planItemsSection(runId: string, listing: PlanListing): Safe {
  const run = encodeURIComponent(runId);
  const query = 'query' in listing ? listing.query : undefined;
  const form = html`<form id="plan-filter" method="get" action="/runs/${run}#plan-items">
<label>op <select name="op"><option value="">all</option>${PLAN_OP_FILTERS.map((op) => (op === query?.op ? html`<option selected>${op}</option>` : html`<option>${op}</option>`))}</select></label>
<label>key starts with <input name="key" value="${query?.keyPrefix ?? ''}" size="24"></label>
<button type="submit">filter</button>
<a href="/runs/${run}/plan.ndjson">download the export (NDJSON)</a></form>`;
  if ('error' in listing) return html`<h3 id="plan-items">Units</h3>${form}<p class="FAIL" id="plan-error">${listing.error}</p>`;
  const { page: p } = listing;
  const filters = { op: query?.op, key: query?.keyPrefix };
  const rows = p.items.map(
    (i) => html`<tr><td><a href="/runs/${run}/plan/${encodeURIComponent(i.key)}"><code>${i.key}</code></a></td><td>${i.op}</td><td>${i.transition ?? '—'}</td>
<td>${i.from_state ?? '—'} → ${i.to_state}</td><td>${i.from_version ?? '—'} → ${i.to_version}</td><td><code>${(i.body_sha256_before ?? '—').slice(0, 12)}</code> → <code>${i.body_sha256_after.slice(0, 12)}</code></td></tr>`,
  );
  const first = query?.after ? html`<a id="plan-first" href="${link(runId, filters)}">« first page</a> ` : html``;
  const next = p.next ? html`<a id="plan-next" href="${link(runId, { ...filters, after: p.next })}">next page »</a>` : html`<span id="plan-end">end of plan</span>`;
  const from = query?.after ? html` after <code>${query.after}</code>` : html``;
  return html`<h3 id="plan-items">Units</h3>${form}
<p>${p.items.length} units${from}, in byte order of key.</p>
<table id="plan-page"><thead><tr><th>key</th><th>op</th><th>transition</th><th>state</th><th>version</th><th>body sha256</th></tr></thead><tbody>${rows}</tbody></table>
<p class="pager">${first}${next}</p>`;
}
