#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { config } from '../../shared/config.js';
import { CutterError, coerceError, exitCodeFor } from '../../shared/errors.js';
import { redactText } from '../../shared/logger.js';
import { CliContext } from './context.js';
import { registerApprovalCommands } from './commands/approval.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerBoardCommand } from './commands/board.js';
import { registerCancelCommand } from './commands/cancel.js';
import { registerDbCommands } from './commands/db.js';
import { registerDemoCommands } from './commands/demo.js';
import { registerGrantsCommands } from './commands/grants.js';
import { registerPlanCommand } from './commands/plan.js';
import { registerReadinessCommand } from './commands/readiness.js';
import { registerRunCommand } from './commands/run.js';
import { registerStatusCommand } from './commands/status.js';
import { registerTargetCommands } from './commands/target.js';
import { registerWorkerCommand } from './commands/worker.js';

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
    registerDbCommands(program, ctx);
    registerDemoCommands(program, ctx);
    registerAuditCommands(program, ctx);
    registerBackupCommands(program, ctx);
    registerApprovalCommands(program, ctx);
    registerBoardCommand(program, ctx);
    registerGrantsCommands(program, ctx);
    registerRunCommand(program, ctx);
    registerStatusCommand(program, ctx);
    registerCancelCommand(program, ctx);
    registerTargetCommands(program, ctx);
    registerPlanCommand(program, ctx);
    registerReadinessCommand(program, ctx);
    registerWorkerCommand(program, ctx);
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
