import { renderMarkdown, writeBenchmarks, type Bench, type Figure } from './harness.js';
import { settleServer } from './figures/seed.js';
import { BENCHES } from './registry.js';

/** `npm run bench [-- --quick] [-- --only name]`: every figure beside its floor, into BENCHMARKS.md. */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? args[onlyIndex + 1] : undefined;
  const selected: Bench[] = BENCHES.filter((b) => only === undefined || b.name === only);
  const figures: Figure[] = [];
  for (const bench of selected) {
    const { waitedMs } = await settleServer();
    process.stderr.write(`bench: ${bench.name}${quick ? ' (quick)' : ''} (server settled in ${waitedMs} ms)\n`);
    figures.push(...(await bench.run({ quick, log: (line) => process.stderr.write(`  ${line}\n`) })));
  }
  const markdown = renderMarkdown(figures, `npm run bench${quick ? ' -- --quick' : ''}`);
  process.stdout.write(markdown);
  writeBenchmarks(markdown);
}

await main();
