import { CutterError } from '../errors.js';

/**
 * The one place where the numbered migrations' history was rewritten, and
 * how a database that applied the old files is carried over. Everything else
 * about migrations is append-only (MIGRATION_EDITED, MIGRATION_UNKNOWN).
 */

export interface LedgerRow {
  version: number;
  name: string;
  sha256: string;
}

/**
 * Files edited after databases outside the tests applied them. A ledger row
 * holding exactly the old hash is updated to the file's new one; the schema
 * they leave is the same once the function files have run.
 */
export const AMENDED: readonly { version: number; oldSha256: string; reason: string }[] = [
  {
    version: 2,
    oldSha256: '19162810c86765496db39b292b3cc74f3437428c39265df84a3e30a966c2dad3',
    reason: 'execution_enabled and disarm_execution moved to shared/db/functions/',
  },
  {
    version: 3,
    oldSha256: '222915c80a808e9d680b4b353471c96da72ff0a5460b93477463aed8bc5dac05',
    reason: 'the audit chain functions and triggers moved to shared/db/functions/ and shared/db/triggers/',
  },
];

/**
 * Migrations 010-019 (commit afc549b; only this repository's tests applied
 * them), squashed into the files numbered `into`: their table, constraint
 * and index changes, their functions now in shared/db/functions/. A database
 * that recorded all ten, with these hashes, already holds their effects: its
 * rows are replaced by the squashed files' rows and the squashed SQL is not
 * run. Anything less is refused (MIGRATION_SQUASHED).
 */
export const SQUASHED: { readonly into: readonly number[]; readonly replaced: readonly LedgerRow[] } = {
  into: [10],
  replaced: [
    { version: 10, name: '010_snapshot_staging_fast.sql', sha256: '89fc90c5f9c6880bdc9ba58dd031a8a2fd56c2b0de95dfde5d73233738b5ae2d' },
    { version: 11, name: '011_snapshot_staging_heap.sql', sha256: '335e8ec8287a43d74a8062dd4a269ea70f7b487055d9d37b42e38d2f49a24d11' },
    { version: 12, name: '012_approval_round_trips.sql', sha256: '724c1ab25da2539fede5da5cf9fadc9930091d5286a33bc0172f1c20901a5b0a' },
    { version: 13, name: '013_gate_records_phase.sql', sha256: '395eb1bd03bef9e3c6d8cb67f6059f6584b18e77733b054230ee3525f2fcc4fd' },
    { version: 14, name: '014_format_checks_without_bounded_regex.sql', sha256: '776005e2a5d67e276ff07ba92c0e04ab1a858b768c7bb58a0ffdbe6773a816de' },
    { version: 15, name: '015_gate_reads_in_claim.sql', sha256: '7d33932e4d236c5846ee2e591dd07b7dff7c10c909825e874cdea2f41cfe6b27' },
    { version: 16, name: '016_gate_opens_in_one_commit.sql', sha256: '3f34b62eb59496be1a4c37842c7b499bfcabe5109803efb2c87486ee3b4eeaf5' },
    { version: 17, name: '017_window_end_plan_cached.sql', sha256: 'dfd63bf48cfe4c00fa69a09dbcae07d38fcbd99bce667365bf5eea633d6f9651' },
    { version: 18, name: '018_gate_handoff.sql', sha256: 'ad4b20dd9a5bf01f87f8c43bbb59ac936f54849556aa6c94bae6b4f28cd16e9c' },
    { version: 19, name: '019_audit_gate_released_index.sql', sha256: 'd07e2b1192078637f88dd86b381e92d600b2a042db9381738bef13095dd898b7' },
  ],
};

/** What the ledger needs before the pending migrations run: rows to rewrite, each said in words. */
export interface HistoryPlan {
  /** Amended rows: the new hash to record, and why. */
  amend: { version: number; name: string; sha256: string; reason: string }[];
  /** The old 010-019 rows to delete and the squashed files' rows to insert in their place; null when not needed. */
  squash: { replaced: LedgerRow[]; by: LedgerRow[] } | null;
}

/**
 * Checks the ledger against the files and says how to carry it over; throws
 * (changing nothing) when it cannot be. `files` are the numbered migrations.
 */
export function planHistory(ledger: readonly LedgerRow[], files: readonly LedgerRow[]): HistoryPlan {
  const retired = new Set(SQUASHED.replaced.map((r) => r.version).filter((v) => !SQUASHED.into.includes(v)));
  const reused = files.find((f) => retired.has(f.version));
  if (reused) {
    throw new CutterError('MIGRATION_NAME', `migration ${reused.name} reuses a number squashed away (migration-history.ts); give it a new number`);
  }
  const isOld = (row: LedgerRow): boolean =>
    retired.has(row.version) || SQUASHED.replaced.some((r) => r.version === row.version && r.sha256 === row.sha256);

  let squash: HistoryPlan['squash'] = null;
  if (ledger.some(isOld)) {
    const missing = SQUASHED.replaced.filter((r) => !ledger.some((row) => row.version === r.version && row.sha256 === r.sha256));
    if (missing.length) {
      throw new CutterError(
        'MIGRATION_SQUASHED',
        `the database holds part of migrations 010-019, which this cutter squashed into ${squashedNames(files)}, ` +
          `but not all ten as released (missing or with an unknown hash: ${missing.map((r) => r.name).join(', ')}); ` +
          'migrate it first with the cutter of commit afc549b, which has them, then with this one',
      );
    }
    const by = files.filter((f) => SQUASHED.into.includes(f.version));
    squash = { replaced: SQUASHED.replaced.map((r) => ({ ...r })), by: by.map(({ version, name, sha256 }) => ({ version, name, sha256 })) };
  }

  const amend: HistoryPlan['amend'] = [];
  const after = new Map<number, LedgerRow>();
  for (const row of ledger) if (!squash || !isOld(row)) after.set(row.version, row);
  for (const row of squash?.by ?? []) after.set(row.version, row);
  for (const row of after.values()) {
    const file = files.find((f) => f.version === row.version);
    if (!file) {
      throw new CutterError('MIGRATION_UNKNOWN', `the database has migration ${row.name}, which this cutter does not know: is it older than the database?`);
    }
    if (file.sha256 === row.sha256) continue;
    const amended = AMENDED.find((a) => a.version === row.version && a.oldSha256 === row.sha256);
    if (!amended) {
      throw new CutterError('MIGRATION_EDITED', `migration ${row.name} was edited after it was applied; migrations are append-only, add a new file instead`);
    }
    amend.push({ version: file.version, name: file.name, sha256: file.sha256, reason: amended.reason });
  }
  return { amend, squash };
}

function squashedNames(files: readonly LedgerRow[]): string {
  return files.filter((f) => SQUASHED.into.includes(f.version)).map((f) => f.name).join(', ') || 'the squashed migration';
}
