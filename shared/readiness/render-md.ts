import type { Readiness, StateValue } from './types.js';

/**
 * The markdown rendering: what a careful engineer would write by hand after
 * checking each item, in the order someone deciding "can we go live?"
 * reads it — the proof first, then what works, then what is missing.
 */

/** A table cell: pipes escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function state(v: StateValue | null): string {
  if (v === null) return 'not read';
  if ('value' in v) return String(v.value);
  return `${v.rows} ${v.rows === 1 ? 'row' : 'rows'}, md5 ${v.hash.slice(0, 12)}`;
}

function header(r: Readiness): string[] {
  const s = r.scope;
  const target = s.target ? `${s.target}${s.corpus ? ` (corpus ${s.corpus})` : ''}` : 'none named';
  const run = s.run_id ? `${s.run_id} (${s.run_status ?? '?'})${s.plan_sha256 ? `, plan ${s.plan_sha256}` : ', no plan yet'}` : 'none named';
  return [
    `# Readiness report${s.target ? `: target ${s.target}` : ''}`,
    '',
    `**Verdict: ${r.verdict}** — ${r.verdict_reason}.`,
    '',
    '| | |',
    '|---|---|',
    `| checked | ${r.started_utc} to ${r.finished_utc} |`,
    `| target | ${cell(target)} |`,
    `| run | ${cell(run)} |`,
    `| snapshot | ${cell(s.snapshot ?? (s.run_id ? "the run's own" : 'none given'))} |`,
    `| operator | ${cell(s.operator)} |`,
    `| database | ${cell(s.database)} |`,
    `| Redis | ${cell(s.redis)}, queue prefix ${cell(s.queue_prefix)} |`,
  ];
}

function dbState(r: Readiness): string[] {
  const out = ['', '## 1. Database state', ''];
  if (r.db_state.length === 0) return [...out, 'Not taken: the database could not be read.'];
  out.push(
    'Every table of the corpus (`public`) and governance (`cutter_governance`) schemas and the kill switch, read before the first check and again after the last ' +
      '(row count and an md5 over the rows; 12 of its 32 hex digits shown, all of them in the JSON). Every read ran in a READ ONLY transaction that was rolled back.',
    '',
    '| table | before | after | result |',
    '|---|---|---|---|',
    ...r.db_state.map((d) => `| ${cell(d.table)} | ${state(d.before)} | ${state(d.after)} | ${d.unchanged ? 'UNCHANGED' : d.after === null ? 'NOT RE-READ' : '**CHANGED**'} |`),
    '',
  );
  const changed = r.db_state.filter((d) => !d.unchanged).length;
  out.push(changed === 0 ? `All ${r.db_state.length} items UNCHANGED: the check changed nothing.` : `${changed} of ${r.db_state.length} items not shown UNCHANGED: see the verdict.`);
  return out;
}

function packages(r: Readiness): string[] {
  const out = ['', '## 2. Package runnability', ''];
  if (r.packages.length === 0) return [...out, 'Not checked.'];
  out.push(
    'YES: exercised read-only and it holds. NO: it does not (see the blockers). SPEC-COMPLETE: everything it needs is present and valid, but part of it could not be exercised without writing or without an input that was not given.',
    '',
    '| package | runnable | what was done |',
    '|---|---|---|',
    ...r.packages.map((p) => `| ${cell(p.name)} | ${p.runnable} | ${cell(p.verified)} |`),
  );
  for (const p of r.packages) {
    if (p.checks.length === 0) continue;
    out.push('', `### ${p.name}: ${p.runnable}`, '', ...p.checks.map((c) => `- ${c.replace(/\s*\n\s*/g, ' ')}`));
  }
  return out;
}

function blockers(r: Readiness): string[] {
  const out = ['', '## 3. Blockers', ''];
  if (r.packages.length === 0) return [...out, 'Not enumerated: the check could not run.'];
  if (r.blockers.length === 0) return [...out, 'None: nothing is missing.'];
  const open = r.blockers.filter((b) => b.blocking).length;
  out.push(`${open} blocking, ${r.blockers.length - open} not blocking. Each names who moves next and exactly what clears it.`, '');
  for (const b of r.blockers) {
    out.push(`${b.id}. **${b.owner}**, ${b.blocking ? 'blocking' : 'not blocking'} (${b.package}): ${b.form}`);
    out.push(`   - found: ${b.why.replace(/\s*\n\s*/g, ' ')}`);
    if (b.attachment) out.push('', '   ```sql', ...b.attachment.trimEnd().split('\n').map((l) => `   ${l}`), '   ```', '');
  }
  return out;
}

/** The whole report as markdown, ending with one newline. */
export function renderReadinessMarkdown(r: Readiness): string {
  const lines = [
    ...header(r),
    ...dbState(r),
    ...packages(r),
    ...blockers(r),
    '',
    '## 4. Verdict',
    '',
    `**${r.verdict}**: ${r.verdict_reason}.`,
    ...(r.failures.length ? ['', ...r.failures.map((f) => `- could not complete: ${f}`)] : []),
    '',
    'PASS: the check ran, changed nothing and enumerated every missing item. READY: nothing is missing. FAIL: the check could not be completed, or the database changed while it ran.',
  ];
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
