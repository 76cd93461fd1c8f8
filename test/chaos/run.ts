/**
 * `npm run test:chaos`: the whole chaos suite (CHAOS_FULL=1), then its
 * outcome counts written into RELIABILITY.md between the generated markers
 * (the prose around them is kept as it is).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Outcome } from './support/outcomes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FILE = join(ROOT, 'RELIABILITY.md');
const BEGIN = '<!-- chaos:begin (written by npm run test:chaos) -->';
const END = '<!-- chaos:end -->';

const dir = mkdtempSync(join(tmpdir(), 'cutter-chaos-'));
const outcomesFile = join(dir, 'outcomes.ndjson');
const started = Date.now();
const vitest = spawnSync('npx', ['vitest', 'run', '--project', 'chaos', ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, CHAOS_FULL: '1', CHAOS_OUTCOMES: outcomesFile },
});
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const outcomes: Outcome[] = existsSync(outcomesFile)
  ? readFileSync(outcomesFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Outcome)
  : [];
rmSync(dir, { recursive: true, force: true });

const cell = (n: number | null) => (n === null ? '—' : String(n));
const groups = [...new Set(outcomes.map((o) => o.group))];
const lines: string[] = [
  BEGIN,
  '',
  `Full run: \`npm run test:chaos\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${minutes} min,`,
  `vitest exit code ${String(vitest.status)}; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}.`,
  '',
];
for (const group of groups) {
  lines.push(`### ${group}`, '', '| fault / input class | tries | runs ended | double applications | partial applications | lost runs | forgeries accepted | notes |', '|---|---|---|---|---|---|---|---|');
  for (const o of outcomes.filter((x) => x.group === group)) {
    lines.push(`| ${o.fault} | ${o.tries} | ${cell(o.runsEnded)} | ${o.doubleApplications} | ${o.partialApplications} | ${o.lostRuns} | ${o.forgeriesAccepted} | ${o.notes} |`);
  }
  lines.push('');
}
const counted = outcomes.filter((o) => !o.group.startsWith('negative control'));
const sum = (k: 'doubleApplications' | 'partialApplications' | 'lostRuns' | 'forgeriesAccepted') => counted.reduce((n, o) => n + o[k], 0);
lines.push(
  `Totals outside the negative control: ${counted.reduce((n, o) => n + o.tries, 0)} tries; double applications ${sum('doubleApplications')}, ` +
    `partial applications ${sum('partialApplications')}, lost runs ${sum('lostRuns')}, forgeries accepted ${sum('forgeriesAccepted')}.`,
  '',
  END,
);

const current = existsSync(FILE) ? readFileSync(FILE, 'utf8') : `# Reliability\n\n${BEGIN}\n${END}\n`;
const from = current.indexOf(BEGIN);
const to = current.indexOf(END);
const next = from >= 0 && to > from ? current.slice(0, from) + lines.join('\n') + current.slice(to + END.length) : `${current.trimEnd()}\n\n${lines.join('\n')}\n`;
writeFileSync(FILE, next);
process.stdout.write(`RELIABILITY.md: ${outcomes.length} classes written\n`);
process.exitCode = vitest.status ?? 1;
