import { Option, type Command } from 'commander';
import { bodyDiff } from '../../../shared/plan/body-diff.js';
import { exportLine, headerLine, requirePlanHeader, streamExportLines, type PlanExportItem } from '../../../shared/plan/export.js';
import { parsePlanQuery, readPlanPage, readPlanPageWithBodies, walkPlan, type PlanItemWithBodies, type PlanQuery } from '../../../shared/plan/plan-items.js';
import { checkExportClaims, readPlanExport } from '../../../shared/plan/read-export.js';
import type { Pool } from '../../../shared/db/pool.js';
import { type CliContext, out } from '../context.js';
import { StdoutBatch } from '../stdout-batch.js';

/**
 * `cutter plan show RUN_ID` and `cutter plan hash FILE` (docs/plan-review.md):
 * a run's frozen change set unit by unit, and the offline check that an
 * export is the plan its header names.
 */

const FORMATS = ['table', 'ndjson', 'csv'] as const;
type Format = (typeof FORMATS)[number];

/** The export's fields, in their order: the columns of table and csv. */
const COLUMNS: (keyof PlanExportItem)[] = ['key', 'op', 'transition', 'from_state', 'to_state', 'from_version', 'to_version', 'body_sha256_before', 'body_sha256_after'];

interface ShowOptions {
  op?: string;
  key?: string;
  diff?: boolean;
  format: Format;
  limit?: string;
}

/** RFC 4180 quoting, only where a value needs it. */
function csvField(v: string | number | null): string {
  const s = v === null ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const cell = (v: string | number | null) => (v === null ? '-' : String(v));

/** Registers `plan show` and `plan hash` under the `plan` command. */
export function registerPlanReviewCommands(plan: Command, ctx: () => CliContext): void {
  plan
    .command('show')
    .description("list a run's frozen change set unit by unit, in byte order of key (ndjson without filters is the export `plan hash` checks)")
    .argument('<run_id>', 'the run')
    .option('--op <op>', 'only items of this op: create | revise | transition | revise+transition (revise and transition include revise+transition)')
    .option('--key <prefix>', 'only keys starting with this')
    .option('--diff', 'add a unified diff of each unit body')
    .addOption(new Option('--format <format>', 'as a table, NDJSON (the export) or CSV').choices(FORMATS).default('table'))
    .option('--limit <n>', 'at most this many items')
    .action(async (runId: string, opts: ShowOptions) => {
      const query = parsePlanQuery({ op: opts.op, key: opts.key, limit: opts.limit }, { limit: Number.MAX_SAFE_INTEGER, maxLimit: Number.MAX_SAFE_INTEGER });
      const pool = ctx().db();
      const header = await requirePlanHeader(pool, runId);
      const sink = new StdoutBatch();
      try {
        const whole = opts.limit === undefined && query.op === undefined && query.keyPrefix === undefined;
        if (opts.format === 'ndjson' && whole && !opts.diff) await writeExport(pool, headerLine(header), runId, sink);
        else await writeItems(pool, runId, query, { format: opts.format, diff: opts.diff === true }, sink);
      } finally {
        await sink.end();
      }
    });

  plan
    .command('hash')
    .description("recompute plan_sha256 from an NDJSON export offline (no database, no network) and check the export's header")
    .argument('<file>', 'an export written by `cutter plan show RUN_ID --format ndjson` or GET /runs/:id/plan.ndjson')
    .action(async (file: string) => {
      const r = await readPlanExport(file);
      out(`${r.planSha256}  ${file}`);
      checkExportClaims(r, file);
      out(`matches the header: run ${r.header.run_id}, target ${r.header.target}, ${r.items} items, plan_sha256 ${r.header.plan_sha256}`);
    });
}

/** The whole export: header, then every item line as PostgreSQL builds it. */
async function writeExport(pool: Pool, header: string, runId: string, sink: StdoutBatch): Promise<void> {
  await sink.write(header);
  const client = await pool.connect();
  let finished = false;
  try {
    const lines = await streamExportLines(client, runId);
    for await (const chunk of lines) {
      await sink.write(chunk as Buffer);
      if (sink.gone) {
        lines.destroy();
        break;
      }
    }
    finished = !sink.gone;
  } finally {
    // A COPY abandoned or failed midway leaves the connection unusable: drop it rather than return it to the pool.
    client.release(!finished);
  }
}

/** Filtered or formatted items, a page at a time. */
async function writeItems(pool: Pool, runId: string, query: PlanQuery, how: { format: Format; diff: boolean }, sink: StdoutBatch): Promise<void> {
  const items = how.diff
    ? walkPlan<PlanItemWithBodies>((q) => readPlanPageWithBodies(pool, runId, q), query, 200)
    : walkPlan<PlanExportItem>((q) => readPlanPage(pool, runId, q), query);
  const columns = how.diff ? [...COLUMNS, 'diff'] : COLUMNS;
  if (how.format === 'csv') await sink.write(`${columns.join(',')}\n`);
  if (how.format === 'table') await sink.write(`${COLUMNS.join('\t')}\n`);
  for await (const item of items) {
    const diff = how.diff ? bodyDiff(item as PlanItemWithBodies) : '';
    if (how.format === 'ndjson') {
      const line = exportLine(item);
      await sink.write(how.diff ? `${line.slice(0, -2)},"diff":${JSON.stringify(diff)}}\n` : line);
    } else if (how.format === 'csv') {
      await sink.write(`${[...COLUMNS.map((c) => csvField(item[c])), ...(how.diff ? [csvField(diff)] : [])].join(',')}\n`);
    } else {
      await sink.write(`${COLUMNS.map((c) => cell(item[c])).join('\t')}\n`);
      if (how.diff) await sink.write(diff === '' ? '    (body unchanged)\n' : diff.replace(/^/gm, '    ').replace(/ {4}$/, ''));
    }
    if (sink.gone) return;
  }
}
