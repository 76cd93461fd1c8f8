import type { PlanExportHeader } from '../../shared/plan/export.js';
import type { PlanItemWithBodies } from '../../shared/plan/plan-items.js';
import { html, page, type Safe } from './html.js';

/** The fields of an item as the unit page lists them (the export's names). */
const FIELDS = ['op', 'transition', 'from_state', 'to_state', 'from_version', 'to_version', 'body_sha256_before', 'body_sha256_after'] as const;

/** A unified diff with its added, removed and hunk lines marked for colour. */
export function diffBlock(diff: string): Safe {
  if (diff === '') return html`<p id="diff-none">The body does not change.</p>`;
  const lines = diff.replace(/\n$/, '').split('\n');
  const kind = (l: string) => (l.startsWith('+++') || l.startsWith('---') ? 'file' : l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'ctx');
  return html`<pre id="diff" class="diff">${lines.map((l) => html`<span class="${kind(l)}">${l}</span>\n`)}</pre>`;
}

const STYLE = html`<style>.diff .add{background:#e6f4ea;color:#11713a}.diff .del{background:#fce8e6;color:#b3261e}.diff .hunk{color:#6b4fbb}.diff .file{color:#555;font-weight:600}</style>`;

/** /runs/:runId/plan/<key>: one unit of the plan, its fields and its body before and after as a diff. */
export function planUnitPage(header: PlanExportHeader, item: PlanItemWithBodies, diff: string): string {
  const run = encodeURIComponent(header.run_id);
  return page(
    `${item.key} in ${header.run_id}`,
    html`${STYLE}<p><a href="/runs/${run}#plan-items">← plan of run ${header.run_id}</a></p>
<h1>Unit <code>${item.key}</code></h1>
<p>Plan <code>${header.plan_sha256}</code> of target ${header.target} (corpus ${header.corpus}), ${header.unit_count} units.</p>
<table id="unit"><tbody>${FIELDS.map((f) => html`<tr><th>${f}</th><td><code>${item[f] ?? '—'}</code></td></tr>`)}</tbody></table>
<h2>Body: before → after</h2>${diffBlock(diff)}`,
  );
}
