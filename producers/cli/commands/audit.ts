import type { Command } from 'commander';
import { verifyAuditChain } from '../../../shared/audit/verify.js';
import { CutterError } from '../../../shared/errors.js';
import { type CliContext, out } from '../context.js';

/** `cutter audit verify`. */
export function registerAuditCommands(program: Command, ctx: () => CliContext): void {
  const audit = program.command('audit').description('the append-only audit chain');
  audit
    .command('verify')
    .description('walk the hash chain; exit 1 naming the first bad row')
    .action(async () => {
      const result = await verifyAuditChain(ctx().db());
      if (!result.ok && result.firstBad) {
        throw new CutterError(
          'AUDIT_CHAIN_BROKEN',
          `audit chain broken at row ${result.firstBad.seq}: ${result.firstBad.reason}`,
        );
      }
      out(`audit chain intact: ${result.rows} row(s)`);
    });
}
