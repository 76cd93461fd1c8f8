#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { config } from '../../shared/config.js';
import { CutterError, coerceError, exitCodeFor } from '../../shared/errors.js';
import { redactText } from '../../shared/logger.js';
import { CliContext } from './context.js';

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
  ['approval', async () => (await import('./commands/approval.js')).registerApprovalCommands],
  ['board', async () => (await import('./commands/board.js')).registerBoardCommand],
  ['grants', async () => (await import('./commands/grants.js')).registerGrantsCommands],
  ['run', async () => (await import('./commands/run.js')).registerRunCommand],
  ['status', async () => (await import('./commands/status.js')).registerStatusCommand],
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

/** The operator's command line: one process, one command, one exit code. */
async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let context: CliContext | undefined;
  try {
    // Configuration is checked before anything else, for every command.
    config();
    const ctx = () => (context ??= new CliContext());
    const program = new Command('cutter')
      .description('governed, approval-gated changes to a PostgreSQL corpus')
      .option('--debug', 'print stack traces')
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s) });
    for (const register of await registrations(argv)) register(program, ctx);
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      // --help and --version exit 0; a usage error is bad input.
      return thrown.exitCode === 0 ? 0 : 2;
    }
    const err = coerceError(thrown);
    const code = err instanceof CutterError ? err.code : 'INTERNAL';
    process.stderr.write(`cutter: ${redactText(err.message)} [${code}]\n`);
    if (debug && err.stack) process.stderr.write(`${redactText(err.stack)}\n`);
    return exitCodeFor(err);
  } finally {
    await context?.close().catch(() => undefined);
  }
}

process.exitCode = await main(process.argv);
