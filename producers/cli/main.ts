#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { config } from '../../shared/config.js';
import { CutterError, coerceError, exitCodeFor } from '../../shared/errors.js';
import { redactText } from '../../shared/logger.js';
import { CliContext, jsonPrinted, outJson } from './context.js';
import { databaseUnreachable } from './services.js';
import { registerApprovalCommands } from './commands/approval.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerBaselineCommands } from './commands/baseline.js';
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
    registerDbCommands(program, ctx);
    registerDemoCommands(program, ctx);
    registerAuditCommands(program, ctx);
    registerBackupCommands(program, ctx);
    registerBaselineCommands(program, ctx);
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
