import type { Command } from 'commander';
import { verifyAuditChain } from '../../../shared/audit/verify.js';
import { finishHint } from '../../../shared/db/restore-hold.js';
import { CutterError } from '../../../shared/errors.js';
import { type CliContext, out } from '../context.js';

/** `cutter audit verify`. */
export function registerAuditCommands(program: Command, ctx: () => CliContext): void {
  const audit = program.command('audit').description('the append-only audit chain');
  audit
    .command('verify')
    .description('walk the hash chain; exit 1 naming the first bad row, or an unfinished restore')
    .action(async () => {
      const result = await verifyAuditChain(ctx().db());
      if (!result.ok && result.firstBad) {
        throw new CutterError(
          'AUDIT_CHAIN_BROKEN',
          `audit chain broken at row ${result.firstBad.seq}: ${result.firstBad.reason}`,
        );
      }
      if (result.unfinishedRestore) {
        throw new CutterError('AUDIT_RESTORE_UNFINISHED', `audit chain of ${result.rows} row(s) is intact, but ${finishHint(result.unfinishedRestore)}`);
      }
      out(`audit chain intact: ${result.rows} row(s)`);
    });
}
