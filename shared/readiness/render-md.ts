import type { Readiness, StateValue } from './types.js';

/**
 * The markdown rendering, in the five sections of the G8 readiness report
 * operators know: the database state (the proof first), what each package
 * can do, the exact missing items, the state of the first live run's path,
 * and the verdict block.
 */

/** A table cell: pipes escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function state(v: StateValue | null): string {
  if (v === null) return 'not read';
  if ('value' in v) return v.value ? 'True' : 'False';
  return `${v.rows} ${v.rows === 1 ? 'row' : 'rows'}, md5 ${v.hash.slice(0, 12)}`;
}

const ZERO = 'ZERO persistent production mutation';

function header(r: Readiness): string[] {
  const s = r.scope;
  const target = s.target ? `${s.target}${s.corpus ? ` (corpus ${s.corpus})` : ''}` : 'none named';
  const run = s.run_id ? `${s.run_id} (${s.run_status ?? '?'})${s.plan_sha256 ? `, plan ${s.plan_sha256}` : ', no plan yet'}` : 'none named';
  return [
    `# Readiness report${s.target ? `: target ${s.target}` : ''}`,
    '',
    `**g8: ${r.g8}** · ready for a live run: **${r.ready_for_live_run}** — ${r.g8_reason}.`,
    '',
    '| | |',
    '|---|---|',
    `| checked | ${r.started_utc} to ${r.finished_utc} |`,
    `| target | ${cell(target)} |`,
    `| run | ${cell(run)} |`,
    `| snapshot | ${cell(s.snapshot ?? (s.run_id ? "the run's own" : 'none given'))} |`,
    `| baseline | ${r.baseline ? cell(`${r.baseline.name}, recorded ${r.baseline.recorded_utc} by ${r.baseline.recorded_by}`) : 'none named: the proof is before and after this check'} |`,
    `| operator | ${cell(s.operator)} |`,
    `| database | ${cell(s.database)} |`,
    `| Redis | ${cell(s.redis)}, queue prefix ${cell(s.queue_prefix)} |`,
  ];
}

function dbState(r: Readiness): string[] {
  const out = ['', '## 1. Database state', ''];
  if (r.db_state.length === 0) return [...out, 'Not taken: the database could not be read.'];
  const changedDuring = r.db_state.filter((d) => !d.unchanged).length;
  if (r.baseline) {
    out.push(`Re-verified against the recorded G0 baseline **${r.baseline.name}**, line by line (count and an md5 of each table's rows):`, '', '```', ...r.baseline.lines.map((l) => l.line), '```', '');
    out.push(
      changedDuring === 0
        ? `This check's own reads: all ${r.db_state.length} items of the database UNCHANGED from its first read to its last.`
        : `This check's own reads: ${changedDuring} of ${r.db_state.length} items not shown UNCHANGED while it ran (see the verdict).`,
    );
    out.push('', r.baseline.holds && changedDuring === 0 ? `**${ZERO}.**` : `**Production state differs from baseline ${r.baseline.name}.**`);
    return out;
  }
  out.push(
    'Every table of the corpus (`public`) and governance (`cutter_governance`) schemas and the kill switch, read before the first check and again after the last ' +
      '(row count and an md5 over the rows; 12 of its 32 hex digits shown, all of them in the JSON). Every read ran in a READ ONLY transaction that was rolled back. ' +
      'Name a recorded baseline (`--baseline NAME`, see `cutter baseline record`) to compare with a state recorded earlier instead.',
    '',
    '| table | before | after | result |',
    '|---|---|---|---|',
    ...r.db_state.map((d) => `| ${cell(d.table)} | ${state(d.before)} | ${state(d.after)} | ${d.unchanged ? 'UNCHANGED' : d.after === null ? 'NOT RE-READ' : '**CHANGED**'} |`),
    '',
  );
  out.push(changedDuring === 0 ? `All ${r.db_state.length} items UNCHANGED: **${ZERO}** by this check.` : `${changedDuring} of ${r.db_state.length} items not shown UNCHANGED: see the verdict.`);
  return out;
}

function packages(r: Readiness): string[] {
  const out = ['', '## 2. Packages', ''];
  if (r.packages.length === 0) return [...out, 'Not checked.'];
  out.push(
    'runnable YES: exercised read-only and it holds. NO: it does not (see the missing items). SPEC-COMPLETE: everything it needs is present and valid, but part of it could not be exercised without writing or without an input that was not given.',
    '',
    '| package | runnable? | verification performed |',
    '|---|---|---|',
    ...r.packages.map((p) => `| ${cell(p.name)} | ${p.runnable} | ${cell(p.verified)} |`),
  );
  for (const p of r.packages) {
    if (p.checks.length === 0) continue;
    out.push('', `### ${p.name}: ${p.runnable}`, '', ...p.checks.map((c) => `- ${c.replace(/\s*\n\s*/g, ' ')}`));
  }
  return out;
}

function missing(r: Readiness): string[] {
  const out = ['', '## 3. Missing items', ''];
  if (r.packages.length === 0) return [...out, 'Not enumerated: the check could not run.'];
  if (r.blockers.length === 0) return [...out, 'None: nothing is missing.'];
  const open = r.blockers.filter((b) => b.blocking).length;
  out.push(`${open} blocking, ${r.blockers.length - open} not blocking. Each names the gap it fills, who moves next, exactly what clears it, and the package that answers it.`, '');
  for (const b of r.blockers) {
    out.push(`${b.id}. **${b.gap}** · ${b.owners.join(' + ')} · ${b.blocking ? 'blocking' : 'not blocking'} · package: ${b.package}`);
    out.push(`   - form: ${b.form}`);
    out.push(`   - found: ${b.why.replace(/\s*\n\s*/g, ' ')}`);
    if (b.attachment) out.push('', '   ```sql', ...b.attachment.trimEnd().split('\n').map((l) => `   ${l}`), '   ```', '');
  }
  return out;
}

function firstRunPath(r: Readiness): string[] {
  const out = ['', '## 4. First-run path', ''];
  if (r.first_run_path.length === 0) return [...out, 'Not assessed: the check could not run.'];
  const count = (s: string) => r.first_run_path.filter((p) => p.state === s).length;
  out.push(
    `${count('CLOSED/READY')} CLOSED/READY, ${count('PACKAGED')} PACKAGED, ${count('OPEN')} OPEN.`,
    '',
    '| step | state | note |',
    '|---|---|---|',
    ...r.first_run_path.map((p) => `| ${cell(p.package)} | ${p.state} | ${cell(p.note)} |`),
  );
  return out;
}

/** The verdict block's lines, as the report has them. */
function verdictBlock(r: Readiness): string[] {
  const on = r.execution_enabled === null ? 'not read' : r.execution_enabled ? 'True' : 'False';
  return [`g8: ${r.g8}`, `production_mutation: ${r.production_mutation}`, `execution_enabled: ${on}`, `ready_for_live_run: ${r.ready_for_live_run}`];
}

/** The whole report as markdown, ending with one newline. */
export function renderReadinessMarkdown(r: Readiness): string {
  const lines = [
    ...header(r),
    ...dbState(r),
    ...packages(r),
    ...missing(r),
    ...firstRunPath(r),
    '',
    '## 5. Verdict',
    '',
    '```',
    ...verdictBlock(r),
    '```',
    '',
    `${r.g8_reason}.`,
    ...(r.failures.length ? ['', ...r.failures.map((f) => `- could not complete: ${f}`)] : []),
    '',
    'g8 PASS: the check ran to the end and the database is as it should be (unchanged while it ran, and equal to the baseline when one is named). ' +
      'It is not a go: a live run is ready only when ready_for_live_run is yes.',
  ];
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}
