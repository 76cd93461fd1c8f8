#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { config } from '../../shared/config.js';
import { CutterError, coerceError, exitCodeFor } from '../../shared/errors.js';
import { redactText } from '../../shared/logger.js';
import { CliContext, jsonPrinted, outJson } from './context.js';
import { databaseUnreachable } from './services.js';

type Register = (program: Command, ctx: () => CliContext) => void;

/**
 * Each top-level command and the module that registers it, in help order.
 * Only the command asked for is imported (all of them for --help or an
 * unknown name): importing every command pulled in BullMQ, Express and
 * the rest, 0.4 s of every start, which `cutter plan show` of a large plan
 * was measured beside a bare COPY with.
 */
const COMMANDS: [string, () => Promise<Register>][] = [
  ['db', async () => (await import('./commands/db.js')).registerDbCommands],
  ['demo', async () => (await import('./commands/demo.js')).registerDemoCommands],
  ['audit', async () => (await import('./commands/audit.js')).registerAuditCommands],
  ['backup', async () => (await import('./commands/backup.js')).registerBackupCommands],
  ['baseline', async () => (await import('./commands/baseline.js')).registerBaselineCommands],
  ['approval', async () => (await import('./commands/approval.js')).registerApprovalCommands],
  ['board', async () => (await import('./commands/board.js')).registerBoardCommand],
  ['grants', async () => (await import('./commands/grants.js')).registerGrantsCommands],
  ['run', async () => (await import('./commands/run.js')).registerRunCommand],
  ['revert', async () => (await import('./commands/revert.js')).registerRevertCommand],
  ['status', async () => (await import('./commands/status.js')).registerStatusCommand],
  ['cancel', async () => (await import('./commands/cancel.js')).registerCancelCommand],
  ['target', async () => (await import('./commands/target.js')).registerTargetCommands],
  ['plan', async () => (await import('./commands/plan.js')).registerPlanCommand],
  ['readiness', async () => (await import('./commands/readiness.js')).registerReadinessCommand],
  ['worker', async () => (await import('./commands/worker.js')).registerWorkerCommand],
];

/** The registrations a command line needs: its command's alone when it names one. */
async function registrations(argv: string[]): Promise<Register[]> {
  const name = argv.slice(2).find((a) => !a.startsWith('-'));
  const asked = COMMANDS.filter(([n]) => n === name);
  return Promise.all((asked.length ? asked : COMMANDS).map(([, load]) => load()));
}

/** package.json's version: two levels up from the source, three from the build in dist/. */
function packageVersion(): string {
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cutter' && pkg.version) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}
const VERSION = packageVersion();

/** A failure to reach PostgreSQL names DATABASE_URL, whichever command met it. */
function explain(err: Error): Error {
  if (err instanceof CutterError) return err;
  try {
    return databaseUnreachable(err, config()) ?? err;
  } catch {
    return err; // the configuration itself is bad: the error stands as it is
  }
}

/** The operator's command line: one process, one command, one exit code. */
async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const json = argv.includes('--json');
  let context: CliContext | undefined;
  try {
    const ctx = () => (context ??= new CliContext());
    const program = new Command('cutter')
      .description('governed, approval-gated changes to a PostgreSQL corpus')
      .version(VERSION, '-V, --version')
      .option('--debug', 'print stack traces')
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s) })
      // Configuration is checked before any command runs, but not for --help or --version.
      .hook('preAction', () => {
        config();
      });
    for (const register of await registrations(argv)) register(program, ctx);
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      // --help and --version exit 0; a usage error is bad input.
      return thrown.exitCode === 0 ? 0 : 2;
    }
    const err = explain(coerceError(thrown));
    const code = err instanceof CutterError ? err.code : 'INTERNAL';
    process.stderr.write(`cutter: ${redactText(err.message)} [${code}]\n`);
    // A command that printed its result and then exits 1 (a failed probe) keeps stdout one JSON object.
    if (json && !jsonPrinted()) outJson({ error: { code, message: redactText(err.message) } });
    if (debug && err.stack) process.stderr.write(`${redactText(err.stack)}\n`);
    return exitCodeFor(err);
  } finally {
    await context?.close().catch(() => undefined);
  }
}

process.exitCode = await main(process.argv);
