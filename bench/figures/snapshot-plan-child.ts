import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createPool, withTransaction } from '../../shared/db/pool.js';
import { buildPlan } from '../../shared/plan/build.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { validateSnapshot } from '../../shared/snapshot/validate.js';
import { getTarget } from '../../shared/targets/registry.js';

/**
 * One measurement in a fresh process, so its peak RSS is its own:
 *   floor FILE                        read the file line by line with JSON.parse, nothing else
 *   parse FILE CORPUS                 cutter's full C5 check of the file (validateSnapshot)
 *   full  FILE URL RUN_ID TARGET      stageSnapshot (C5 + COPY) then buildPlan, as discover + cutplan do
 * Prints one JSON line: seconds per step and maxRSS (KiB).
 */

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

async function main(): Promise<Record<string, number>> {
  const [mode, file, a, b, c] = process.argv.slice(2);
  if (!file) throw new Error('usage: floor|parse|full FILE …');
  const start = process.hrtime.bigint();
  if (mode === 'floor') {
    let records = 0;
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      JSON.parse(line);
      records += 1;
    }
    return { seconds: seconds(start), records };
  }
  if (mode === 'parse') {
    const checked = await validateSnapshot(file, { corpus: a ?? '' });
    return { seconds: seconds(start), records: checked.records };
  }
  if (mode === 'full' && a && b && c) {
    const pool = createPool(a, { max: 2, applicationName: 'cutter-bench' });
    try {
      const target = await getTarget(pool, c);
      if (!target) throw new Error(`no target ${c}`);
      const staged = await stageSnapshot(pool, { runId: b, corpus: target.corpus, path: file });
      const stageSeconds = seconds(start);
      const planStart = process.hrtime.bigint();
      const plan = await withTransaction(pool, (client) => buildPlan(client, { runId: b, target }));
      return { seconds: seconds(start), stage_seconds: stageSeconds, plan_seconds: seconds(planStart), records: staged.records, unit_count: plan.unit_count };
    } finally {
      await pool.end();
    }
  }
  throw new Error(`unknown mode ${String(mode)}`);
}

const result = await main();
process.stdout.write(`${JSON.stringify({ ...result, max_rss_kib: process.resourceUsage().maxRSS })}\n`);
