import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { checkChainHead, formatHead, headInReport, headProblem, parseHead, type ChainHead, type HeadCheck } from '../../../shared/audit/head.js';
import { verifyAuditChain } from '../../../shared/audit/verify.js';
import { CutterError } from '../../../shared/errors.js';
import { type CliContext, out, outJson } from '../context.js';

interface VerifyOptions {
  head?: string;
  report?: string;
  json?: boolean;
}

/** The head to look for, from --head or a report's line; bad input (exit 2) before anything is read from the database. */
async function headAsked(opts: VerifyOptions): Promise<ChainHead | null> {
  if (opts.head !== undefined && opts.report !== undefined) {
    throw new CutterError('AUDIT_HEAD_OPTIONS', 'give --head SEQ:HASH or --report FILE, not both', { kind: 'bad_input' });
  }
  if (opts.head !== undefined) return parseHead(opts.head);
  if (opts.report === undefined) return null;
  let text: string;
  try {
    text = await readFile(opts.report, 'utf8');
  } catch (err) {
    throw new CutterError('FILE_UNREADABLE', `cannot read report ${opts.report}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { kind: 'bad_input', cause: err });
  }
  return headInReport(text, `report ${opts.report}`);
}

/** `cutter audit verify [--head SEQ:HASH | --report FILE] [--json]`. */
export function registerAuditCommands(program: Command, ctx: () => CliContext): void {
  const audit = program.command('audit').description('the append-only audit chain');
  audit
    .command('verify')
    .description('walk the hash chain; exit 1 naming the first bad row or a head written down earlier that the chain no longer holds')
    .option('--head <seq:hash>', 'a head written down earlier (a report, a webhook event, a backup manifest): the chain must still hold it')
    .option('--report <file>', "read the head from a run report's `audit chain head:` line")
    .option('--json', 'print the outcome as one JSON object')
    .action(async (opts: VerifyOptions) => {
      const head = await headAsked(opts);
      const pool = ctx().db();
      const result = await verifyAuditChain(pool);
      const check: HeadCheck | null = head ? await checkChainHead(pool, head) : null;
      const problem = head && check ? headProblem(head, check) : null;
      if (opts.json) {
        outJson({
          ok: result.ok && problem === null,
          rows: result.rows,
          first_bad: result.firstBad ?? null,
          head: head && check ? headJson(head, check) : null,
        });
      }
      // A head the chain lost says more than the walk: a cut tail or a re-linked rewrite walks intact.
      if (problem && check) {
        const also = result.firstBad ? `; and the chain is broken at row ${result.firstBad.seq}: ${result.firstBad.reason}` : '';
        throw new CutterError(check.state === 'missing' ? 'AUDIT_HEAD_MISSING' : 'AUDIT_HEAD_MISMATCH', `${problem}${also}`);
      }
      if (!result.ok && result.firstBad) {
        throw new CutterError('AUDIT_CHAIN_BROKEN', `audit chain broken at row ${result.firstBad.seq}: ${result.firstBad.reason}`);
      }
      if (opts.json) return;
      out(`audit chain intact: ${result.rows} row(s)`);
      if (head) out(`head ${formatHead(head)}: held (row ${head.seq} of ${result.rows}, same hash)`);
    });
}

/** The head check under --json: what was looked for, and what the chain has. */
function headJson(head: ChainHead, check: HeadCheck): Record<string, unknown> {
  const missing = check.state === 'missing' ? { from: Math.min(check.chainEndsAt + 1, head.seq), to: head.seq } : null;
  return {
    head: formatHead(head),
    state: check.state,
    chain_ends_at: check.chainEndsAt,
    missing_rows: missing,
    actual_hash: check.state === 'mismatch' ? check.actualHash : null,
  };
}
