import type { Pool, PoolClient } from '../db/pool.js';
import type { Check } from './checks.js';
import type { TableFingerprint } from './fingerprint.js';
import { getPhases, getRun, type PhaseRow } from './store.js';

/** A summary value as report text (strings as they are, anything else as JSON). */
function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? '';
}

/** The markdown run report, built from what Postgres holds about the run. */
export async function buildReport(pool: Pool | PoolClient, runId: string): Promise<string> {
  const run = await getRun(pool, runId);
  if (!run) return `# Run ${runId}\n\nNo such run.\n`;
  const phases = await getPhases(pool, runId);
  const byPhase = new Map(phases.map((p) => [p.phase, p]));
  const verify = await pool.query<{ passed: boolean; checks: Check[] }>(
    'SELECT passed, checks FROM cutter_governance.verify_result WHERE run_id = $1',
    [runId],
  );
  const baseline = run.baseline as { tables?: TableFingerprint[]; execution_enabled?: boolean; redis?: { durable: boolean }; volatile_redis_allowed?: boolean } | null;
  const lines: string[] = [
    `# Run ${run.run_id}`,
    '',
    `- target: ${run.target} (corpus ${run.corpus})`,
    `- mode: ${run.mode}`,
    `- operator: ${run.operator}`,
    `- status: ${run.status}${run.failed_phase ? ` (failed in ${run.failed_phase}: ${run.error_code ?? ''} ${run.error_message ?? ''})` : ''}`,
    `- verdict: **${run.verdict ?? 'none yet'}**`,
    '',
    '## Phases',
    '',
    '| phase | state | attempts | duration |',
    '|---|---|---|---|',
    ...phases.map((p) => `| ${p.phase} | ${p.state} | ${p.attempts} | ${duration(p)} |`),
    '',
  ];
  if (baseline?.tables) {
    lines.push('## Baseline (G0)', '', '| table | rows | hash |', '|---|---|---|');
    for (const t of baseline.tables) lines.push(`| ${t.table} | ${t.rows} | \`${t.hash}\` |`);
    lines.push('', `execution_enabled(): ${String(baseline.execution_enabled)}; Redis durable: ${String(baseline.redis?.durable)}` +
      (baseline.volatile_redis_allowed ? ' (volatile Redis allowed by CUTTER_ALLOW_VOLATILE_REDIS)' : ''), '');
  }
  const plan = byPhase.get('cutplan')?.summary;
  if (plan?.['plan_sha256']) {
    lines.push('## Plan', '', `- plan_sha256: \`${text(plan['plan_sha256'])}\``, `- unit_count: ${text(plan['unit_count'])}`,
      `- by_op: ${JSON.stringify(plan['by_op'])}`, `- by_transition: ${JSON.stringify(plan['by_transition'])}`, '');
  }
  const grants = byPhase.get('grant-probe')?.summary;
  if (grants?.['role']) lines.push('## Grant probe', '', `- role ${text(grants['role'])}: ${text(grants['rows'])} rows, all hold`, '');
  const backup = byPhase.get('backup')?.summary;
  if (backup?.['file']) {
    lines.push('## Backup', '', `- file: ${text(backup['file'])}`, `- bytes: ${text(backup['bytes'])}`,
      `- sha256: \`${text(backup['sha256'])}\``, `- recipient: ${text(backup['recipient_fpr'])}`, `- verified: ${text(backup['verified'])}`, '');
  }
  const exec = byPhase.get('execute')?.summary;
  if (exec && Object.keys(exec).length) {
    lines.push(run.mode === 'dry' ? '## Rehearsal (rolled back)' : '## Execution', '');
    for (const [k, v] of Object.entries(exec)) lines.push(`- ${k}: ${JSON.stringify(v)}`);
    lines.push('');
  }
  const result = verify.rows[0];
  if (result) {
    lines.push('## Verification (G8)', '', '| check | expected | actual | result |', '|---|---|---|---|');
    for (const c of result.checks) lines.push(`| ${c.name} | ${cell(c.expected)} | ${cell(c.actual)} | ${c.passed ? 'PASS' : 'FAIL'} |`);
    lines.push('');
  }
  lines.push(`## Verdict`, '', `**${run.verdict ?? 'none'}**`, '');
  return lines.join('\n');
}

function duration(p: PhaseRow): string {
  if (!p.finished_at) return '…';
  return `${((p.finished_at.getTime() - p.started_at.getTime()) / 1000).toFixed(2)} s`;
}

function cell(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return (text ?? '').replace(/\|/g, '\\|');
}
