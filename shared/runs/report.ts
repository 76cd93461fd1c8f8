import { formatHead, readChainHead, REPORT_HEAD_LABEL } from '../audit/head.js';
import type { Pool, PoolClient } from '../db/pool.js';
import type { Phase } from '../jobs/catalog.js';
import type { PhaseResult } from '../jobs/results.js';
import { listSkipped } from './revert-skipped.js';
import { loadVerifyResult } from './checks.js';
import { completedResult, getPhases, getRun, runBaseline, type PhaseRow } from './store.js';

/**
 * Reads what the report shows through the schemas; a record that does not
 * parse is named in the report (never dropped silently), and the report is
 * still written: a run failing closed must not fail to record why.
 */
function reader(unreadable: string[]) {
  return async <T>(what: string, read: () => T | Promise<T>): Promise<T | null> => {
    try {
      return await read();
    } catch (err) {
      unreadable.push(`${what}: ${(err as Error).message.replace(/\s+/g, ' ').slice(0, 300)}`);
      return null;
    }
  };
}

/**
 * The markdown run report, built from what Postgres holds about the run,
 * ending with the audit chain's head. Where a run ends it is built after the
 * end's audit row, in the same transaction, so the head written is that row.
 */
export async function buildReport(pool: Pool | PoolClient, runId: string): Promise<string> {
  const run = await getRun(pool, runId);
  if (!run) return `# Run ${runId}\n\nNo such run.\n`;
  const phases = await getPhases(pool, runId);
  const unreadable: string[] = [];
  const read = reader(unreadable);
  const result = <P extends Phase>(phase: P): Promise<PhaseResult<P> | null> => read(`${phase} result`, () => completedResult(phases, phase));
  const verify = await read('verify_result', () => loadVerifyResult(pool, runId));
  const baseline = await read('baseline', () => runBaseline(run));
  const lines: string[] = [
    `# Run ${run.run_id}`,
    '',
    `- target: ${run.target} (corpus ${run.corpus})`,
    `- mode: ${run.mode}`,
    ...(run.revert_of === null ? [] : [`- revert of: ${run.revert_of} (its plan is the inverse of what that run applied)`]),
    `- operator: ${run.operator}`,
    `- status: ${run.status}${statusDetail(run)}`,
    `- verdict: **${run.verdict ?? 'none yet'}**`,
    '',
    '## Phases',
    '',
    '| phase | state | attempts | duration |',
    '|---|---|---|---|',
    ...phases.map((p) => `| ${p.phase} | ${p.state} | ${p.attempts} | ${duration(p)} |`),
    '',
  ];
  // Every section is shown: one without its record says why, never drops out.
  const absent = (phase: Phase): string[] => {
    const row = phases.find((p) => p.phase === phase);
    if (!row) return [`- none: the ${phase} phase did not run`, ''];
    if (row.state === 'failed') return [`- none: the ${phase} phase failed (${row.error_code ?? 'no code'})`, ''];
    if (row.state === 'completed') return [`- none: its stored record is unreadable (see Unreadable records)`, ''];
    return [`- none yet: the ${phase} phase is ${row.state}`, ''];
  };
  lines.push('## Baseline (G0)', '');
  if (baseline) {
    if (baseline.write_mark !== undefined) {
      lines.push(`Of corpus ${baseline.corpus}: every write to its units, their versions or their log rows committed after the mark ` +
        `\`${baseline.write_mark}\` (the server's snapshot at ${baseline.taken_utc}) counts against the run (docs/proof.md).`);
    }
    if (baseline.tables) {
      lines.push(`Of corpus ${baseline.corpus}: its units, and the versions and log rows of those units.`, '', '| table | rows | hash |', '|---|---|---|');
      for (const t of baseline.tables) lines.push(`| ${t.table} | ${t.rows} | \`${t.hash}\` |`);
    }
    lines.push('', `execution_enabled(): ${String(baseline.execution_enabled)}; Redis durable: ${String(baseline.redis.durable)}` +
      (baseline.volatile_redis_allowed ? ' (volatile Redis allowed by CUTTER_ALLOW_VOLATILE_REDIS)' : ''), '');
  } else lines.push(...absent('precheck'));
  const grants = await result('grant-probe');
  lines.push('## Grant probe', '', ...(grants ? [`- role ${grants.role}: ${grants.rows} rows, all hold`, ''] : absent('grant-probe')));
  const plan = await result('cutplan');
  lines.push('## Plan', '');
  if (plan) {
    lines.push(`- plan_sha256: \`${plan.plan_sha256}\``, `- unit_count: ${plan.unit_count}`,
      `- by_op: ${JSON.stringify(plan.by_op)}`, `- by_transition: ${JSON.stringify(plan.by_transition)}`, '');
  } else lines.push(...absent('cutplan'));
  if (run.revert_of !== null) lines.push(...(await skippedSection(pool, run.run_id, run.revert_skip_drifted)));
  const backup = await result('backup');
  lines.push('## Backup', '');
  if (backup) {
    lines.push(`- file: ${backup.file}`, `- bytes: ${backup.bytes}`,
      `- sha256: \`${backup.sha256}\``, `- recipient: ${backup.recipient_fpr}`, `- verified: ${String(backup.verified)}`, '');
  } else lines.push(...absent('backup'));
  const exec = await result('execute');
  lines.push(run.mode === 'dry' ? '## Rehearsal (rolled back)' : '## Execution', '');
  if (exec) {
    for (const [k, v] of Object.entries(exec)) lines.push(`- ${k}: ${JSON.stringify(v)}`);
    lines.push('');
  } else lines.push(...absent('execute'));
  lines.push('## Verification (G8)', '');
  if (verify) {
    lines.push('| check | expected | actual | result |', '|---|---|---|---|');
    for (const c of verify.checks) lines.push(`| ${c.name} | ${cell(c.expected)} | ${cell(c.actual)} | ${c.passed ? 'PASS' : 'FAIL'} |`);
    lines.push('');
  } else lines.push(...absent('verify'));
  if (unreadable.length) lines.push('## Unreadable records', '', ...unreadable.map((u) => `- ${u}`), '');
  lines.push(`## Verdict`, '', `**${run.verdict ?? 'none'}**`, '');
  // Last, and read last: built where a run ends, after its end's audit row in the same transaction, so the head includes it.
  const head = await readChainHead(pool);
  lines.push('## Audit chain', '', `${REPORT_HEAD_LABEL} ${head ? formatHead(head) : 'none (the chain is empty)'}`, '',
    "The chain's last row when this report was written, kept outside the database: `cutter audit verify --report FILE` fails when the chain no longer holds it (rows cut off, or rewritten at or before it).", '');
  return lines.join('\n');
}

/** How many of a revert's skipped units the report lists by name. */
const SKIPPED_LISTED = 100;

/** A revert's units left out because they changed after the run it reverts (--skip-drifted). */
async function skippedSection(pool: Pool | PoolClient, runId: string, skipDrifted: boolean): Promise<string[]> {
  const skipped = await listSkipped(pool, runId, SKIPPED_LISTED);
  const lines = ['### Skipped (changed after the reverted run)', ''];
  if (skipped.count === 0) return [...lines, skipDrifted ? '- none' : '- none: without --skip-drifted a changed unit refuses the revert', ''];
  lines.push('| key | changed by run |', '|---|---|');
  for (const u of skipped.units) lines.push(`| ${u.key} | ${u.changed_by_run ?? '(no run recorded)'} |`);
  if (skipped.count > skipped.units.length) lines.push('', `… and ${skipped.count - skipped.units.length} more (cutter_governance.revert_skip)`);
  return [...lines, ''];
}

function duration(p: PhaseRow): string {
  if (!p.finished_at) return '…';
  return `${((p.finished_at.getTime() - p.started_at.getTime()) / 1000).toFixed(2)} s`;
}

function cell(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return (text ?? '').replace(/\|/g, '\\|');
}

/** Why the run ended as it did: the phase that failed, or who said no (cancelled, rejected) and why. */
function statusDetail(run: { failed_phase: string | null; error_code: string | null; error_message: string | null; phase: string | null }): string {
  if (run.failed_phase) return ` (failed in ${run.failed_phase}: ${run.error_code ?? ''} ${run.error_message ?? ''})`;
  if (run.error_code) return ` (${run.error_code} at ${run.phase ?? 'no phase'}: ${run.error_message ?? ''})`;
  return '';
}
