import type { Command } from 'commander';
import { createBackup } from '../../../shared/backup/create.js';
import { BackupRunnerError } from '../../../shared/backup/errors.js';
import { restoreBackup } from '../../../shared/backup/restore.js';
import { RUN_RESTORED, type RestoreSettlement } from '../../../shared/backup/settle.js';
import { runSelftest, type SelftestCheck } from '../../../shared/backup/selftest.js';
import { backupSpecFromConfig } from '../../../shared/backup/spec.js';
import { verifyBackup, type VerifyCheck } from '../../../shared/backup/verify.js';
import { redactUrl } from '../../../shared/logger.js';
import { type CliContext, out, outJson } from '../context.js';

/** PASS/FAIL/SKIP lines; a failed line carries its code, and its message ends with the fix. */
function printChecks(checks: (SelftestCheck | VerifyCheck)[]): void {
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    const verdict = 'skipped' in c && c.skipped ? 'SKIP' : c.ok ? 'PASS' : 'FAIL';
    out(`${verdict}  ${c.name.padEnd(width)}  ${c.ok ? '' : `[${c.code ?? 'FAILED'}] `}${c.message}`);
  }
}

/** What the restore settled in the governance tables, one line each. */
function printSettled(r: RestoreSettlement): void {
  out(
    r.runs_abandoned.length
      ? `runs abandoned (${RUN_RESTORED}): ${r.runs_abandoned.map((e) => `${e.run_id} (${e.status}${e.phase ? ` at ${e.phase}` : ''}${e.applied ? ', plan applied before the restore' : ''})`).join(', ')}; their corpus locks released`
      : 'runs in flight: none; corpus locks: none held',
  );
  out(`kill switch: off${r.switch_was_for ? ` (was set for ${r.switch_was_for})` : ''}`);
  if (r.approvals_consumed) out(`approvals of applied plans marked consumed: ${r.approvals_consumed}`);
  if (r.writes_restamped) out(`records of corpus writes made on another server, stamped as history (docs/proof.md): ${r.writes_restamped}`);
  if (r.audit_seq !== null) out(`audited: backup.restored (row ${r.audit_seq})`);
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise. */
function progressPrinter(): { update: (bytes: number) => void; done: (bytes: number) => void } {
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  return {
    update: (bytes) => {
      if (tty) {
        process.stderr.write(`\rbackup: ${bytes} bytes written (${mib(bytes)})`);
      } else if (Date.now() - lastLine >= 2000) {
        lastLine = Date.now();
        process.stderr.write(`backup: ${bytes} bytes written\n`);
      }
    },
    done: (bytes) => process.stderr.write(`${tty ? '\r' : ''}backup: ${bytes} bytes written, done\n`),
  };
}

/** `cutter backup selftest | create | verify | restore`: the backup runner on its own. */
export function registerBackupCommands(program: Command, ctx: () => CliContext): void {
  const backup = program.command('backup').description('encrypted, verified backups (pg_dump -Fc into gpg)');

  backup
    .command('selftest')
    .description('check gpg, the recipient key, pg_dump, the database and the backup directory; take no backup, leave no file')
    .option('--out <dir>', 'the backup directory (default BACKUP_DIR)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { out?: string; json?: boolean }) => {
      const spec = backupSpecFromConfig(ctx().cfg, { outDir: opts.out });
      const report = await runSelftest(spec);
      if (opts.json) outJson(report);
      else {
        printChecks(report.checks);
        out(report.ok ? 'backup selftest: PASS' : `backup selftest: FAIL (${report.checks.filter((c) => !c.ok).length} check(s))`);
      }
      if (!report.ok) process.exitCode = 1;
    });

  backup
    .command('create')
    .description('take an encrypted backup with a manifest beside it')
    .option('--out <dir>', 'the backup directory (default BACKUP_DIR)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { out?: string; json?: boolean }) => {
      const spec = backupSpecFromConfig(ctx().cfg, { outDir: opts.out });
      // Ctrl-C stops both children and removes the partial file instead of leaving it behind.
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      const progress = progressPrinter();
      try {
        const result = await createBackup(spec, { onProgress: progress.update, signal: abort.signal });
        progress.done(result.manifest.bytes);
        const m = result.manifest;
        if (opts.json) {
          outJson({ file: result.file, manifest_file: result.manifestFile, manifest: m });
          return;
        }
        out(`backup:   ${result.file}`);
        out(`manifest: ${result.manifestFile}`);
        out(`database: ${m.database} (PostgreSQL ${m.server_version}), ${m.tables.length} table(s), ${m.tables.reduce((n, t) => n + t.rows, 0)} row(s)`);
        out(`size:     ${m.bytes} bytes, sha256 ${m.sha256}`);
        out(`for:      ${m.recipient_fpr} (encryption subkey ${m.encryption_subkey_id})`);
        if (m.audit_head) out(`audit:    chain head ${m.audit_head} (cutter audit verify --head ${m.audit_head})`);
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    });

  backup
    .command('verify')
    .description('check a backup against its manifest (size, sha256, recipient; a full read when the secret key is here)')
    .argument('<file>', 'the .pgdump.gpg file')
    .option('--drill <url>', 'also restore into this new or empty database and compare every table fingerprint')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, opts: { drill?: string; json?: boolean }) => {
      const report = await verifyBackup(file, { gnupgHome: ctx().cfg.GNUPGHOME, drillUrl: opts.drill });
      if (opts.json) outJson(report);
      else {
        printChecks(report.checks);
        out(report.ok ? `backup verify: PASS ${report.file}` : `backup verify: FAIL ${report.file}`);
      }
      if (!report.ok) process.exitCode = 1;
    });

  backup
    .command('restore')
    .description('restore a checked backup: into a new or empty database whole, into a cutter database (--force) its corpus tables only; no run comes back in flight')
    .argument('<file>', 'the .pgdump.gpg file')
    .requiredOption('--into <url>', 'the database to restore into')
    .option('--force', "restore into a database that is not empty: a cutter database gets the backup's corpus tables (governance and audit chain kept), any other has the backup's objects replaced")
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: { into: string; force?: boolean; json?: boolean }) => {
      const result = await restoreBackup(file, { into: opts.into, force: opts.force === true, gnupgHome: ctx().cfg.GNUPGHOME });
      if (opts.json) {
        outJson({ database: result.database, created: result.created, scope: result.scope, tables: result.tables, mismatches: result.mismatches, settled: result.settled });
      } else {
        out(`restored ${file} into ${redactUrl(opts.into)}${result.created ? ' (database created)' : ''}`);
        out(
          result.scope === 'corpus'
            ? 'in place: the corpus tables only; governance tables, execution ledger and audit chain kept as they were'
            : 'whole database: every object the backup holds',
        );
        out(`${result.tables.length} table(s), ${result.tables.reduce((n, t) => n + t.rows, 0)} row(s)`);
        out(result.mismatches.length === 0 ? "fingerprints: every restored table equals the manifest's" : `fingerprints differ: ${result.mismatches.map((m) => m.name).join(', ')}`);
        if (result.settled) printSettled(result.settled);
      }
      if (result.mismatches.length > 0) {
        throw new BackupRunnerError('BACKUP_DRILL_MISMATCH', `the restored ${result.mismatches.map((m) => m.name).join(', ')} differ from the manifest`);
      }
    });
}
