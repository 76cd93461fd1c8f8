import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../shared/audit/verify.js';
import { createBackup } from '../../shared/backup/create.js';
import { readManifest } from '../../shared/backup/manifest.js';
import { backupSpecFrom } from '../../shared/backup/spec.js';
import { appendAudit } from '../../shared/audit/append.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { probeGrants } from '../../shared/grants/probe.js';
import { restoreBackup } from '../../shared/backup/restore.js';
import { HOLD_SCHEMA } from '../../shared/db/restore-hold.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { handAddedExecute, runAppliedLive, trustLocalSovereign, type AppliedRun } from '../support/applied-run.js';
import { runCli } from '../support/cli.js';
import { createDemoDatabase, dropDatabase, queryOnce, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * The restore of an applied run's own backup (taken by its backup phase,
 * after the gate consumed the approvals and the EXEC grant turned the switch
 * on) must re-arm nothing: design §2, shared/backup/reassert.ts.
 */

let env: RunEnv;
let applied: AppliedRun;
let sha256: string;
/** The audit chain (seq → hash) and the ledger just before the in-place restore. */
let chainBefore: { seq: number; hash: string }[];
const scratch: string[] = [];

const one = queryOnce;

async function chainOf(url: string): Promise<{ seq: number; hash: string }[]> {
  return one(url, 'SELECT seq::int, hash FROM cutter_governance.audit_event ORDER BY seq');
}

async function armedState(url: string) {
  const [row] = await one<{ in_flight: number; switch_on: boolean; locks: number; hold: boolean }>(
    url,
    `SELECT (SELECT count(*)::int FROM cutter_governance.run WHERE status IN ('queued', 'running', 'awaiting_approval')) AS in_flight,
            cutter_governance.execution_enabled() AS switch_on,
            (SELECT count(*)::int FROM cutter_governance.corpus_lock) AS locks,
            to_regnamespace($1) IS NOT NULL AS hold`,
    [HOLD_SCHEMA],
  );
  return row;
}

function scratchUrl(label: string): string {
  const name = uniqueDatabaseName(label);
  scratch.push(name);
  return testDatabaseUrl(name);
}

beforeAll(async () => {
  env = await createRunEnv('restorelive');
  const sovereign = trustLocalSovereign(env);
  await env.startFleet();
  applied = await runAppliedLive(env, sovereign);
  sha256 = (await readManifest(applied.backupFile)).sha256;
}, 180_000);

afterAll(async () => {
  await env.close();
  for (const name of scratch) await dropDatabase(name);
});

describe('cutter backup restore --force of an applied run’s own backup into its live database', () => {
  it('ends the run, turns the switch off, keeps the ledger row and every audit row, and records the restore', async () => {
    // The backup as it is, restored plainly, would be the re-armed state of the issue.
    await env.fleet?.close();
    delete env.fleet;
    chainBefore = await chainOf(env.db.url);
    const result = await runCli(['backup', 'restore', applied.backupFile, '--into', env.db.url, '--force'], env.env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("fingerprints: every table equals the manifest's");
    expect(result.stdout).toMatch(/^in place: 1 ledger row\(s\) and \d+ audit row\(s\) from before the restore put back after row \d+$/m);
    expect(result.stdout).toContain(`runs ended (RUN_RESTORED): ${applied.runId} (running at backup, plan applied before the restore)`);
    expect(result.stdout).toContain(`kill switch: off (was set for ${applied.runId})`);

    expect(await armedState(env.db.url)).toEqual({ in_flight: 0, switch_on: false, locks: 0, hold: false });
    const [run] = await one<{ status: string; error_code: string; failed_phase: string; report: string }>(
      env.db.url,
      'SELECT status, error_code, failed_phase, report FROM cutter_governance.run WHERE run_id = $1',
      [applied.runId],
    );
    expect(run).toMatchObject({ status: 'failed', error_code: 'RUN_RESTORED', failed_phase: 'backup' });
    expect(run?.report).toContain('RUN_RESTORED');
    expect(run?.report).toContain(`WAS applied`);
    // The demo seed's history applied its enactment first (docs/design.md §2).
    expect(await one(env.db.url, 'SELECT run_id, plan_sha256 = $1 AS same FROM cutter_governance.execution_ledger ORDER BY applied_at', [applied.planSha256])).toEqual([
      { run_id: 'run-demo-history-1', same: false },
      { run_id: applied.runId, same: true },
    ]);
    const approvals = await one<{ gate: string; consumed: boolean }>(
      env.db.url,
      'SELECT gate, consumed_utc IS NOT NULL AS consumed FROM cutter_governance.review_decision WHERE run_id = $1 ORDER BY gate',
      [applied.runId],
    );
    expect(approvals).toEqual([{ gate: 'EXEC', consumed: true }, { gate: 'SG_1', consumed: true }]);

    // Every row the chain had, as it was, then the restore's own row.
    const chainAfter = await chainOf(env.db.url);
    expect(chainAfter.slice(0, chainBefore.length)).toEqual(chainBefore);
    expect(chainAfter).toHaveLength(chainBefore.length + 1);
    const [restored] = await one<{ kind: string; detail: Record<string, unknown> }>(
      env.db.url,
      'SELECT kind, detail FROM cutter_governance.audit_event ORDER BY seq DESC LIMIT 1',
    );
    expect(restored?.kind).toBe('backup.restored');
    expect(restored?.detail).toMatchObject({
      file: applied.backupFile,
      sha256,
      in_place: true,
      switch_was_for: applied.runId,
      ledger_rows_reinserted: [applied.runId],
      runs_ended: [{ run_id: applied.runId, status: 'running', phase: 'backup', applied: true }],
    });
    const verified = await runCli(['audit', 'verify'], env.env);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout.trim()).toBe(`audit chain intact: ${chainAfter.length} row(s)`);
  });

  it('a hand-added execute job for that run, with a fleet running, applies nothing', async () => {
    await env.startFleet();
    const corpus = await env.corpus();
    const counts = async () =>
      (await one<{ ledger: number; log: number; versions: number }>(
        env.db.url,
        `SELECT (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger,
                (SELECT count(*)::int FROM public.iu_lifecycle_log WHERE run_id = $1) AS log,
                (SELECT count(*)::int FROM public.unit_version WHERE created_by_run = $1) AS versions`,
        [applied.runId],
      ))[0];
    const before = await counts();
    expect(before).toEqual({ ledger: 1, log: 0, versions: 0 });
    await handAddedExecute(env, applied.runId, `${applied.runId}.execute.by-hand`);
    expect(await env.corpus()).toEqual(corpus);
    expect(await counts()).toEqual(before);
    expect(await armedState(env.db.url)).toMatchObject({ in_flight: 0, switch_on: false });
    await env.fleet?.close();
    delete env.fleet;
  });

  it('a restore interrupted after pg_restore is detected, and the same command finishes it', async () => {
    const chainBeforeCrash = await chainOf(env.db.url);
    await expect(
      restoreBackup(applied.backupFile, {
        into: env.db.url,
        force: true,
        gnupgHome: env.cfg.GNUPGHOME,
        afterPgRestore: () => Promise.reject(new Error('crash after pg_restore')),
      }),
    ).rejects.toThrow('crash after pg_restore');
    // The backup's state, re-armed, with the hold that says so.
    expect(await armedState(env.db.url)).toMatchObject({ in_flight: 1, switch_on: true, hold: true });
    const detected = await runCli(['audit', 'verify'], env.env);
    expect(detected.code).toBe(1);
    expect(detected.stderr).toMatch(/did not finish.*cutter_restore_hold.*\[AUDIT_RESTORE_UNFINISHED\]/);

    const finished = await restoreBackup(applied.backupFile, { into: env.db.url, force: true, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE });
    expect(finished.reasserted).toMatchObject({ in_place: true, resumed_hold: true, ledger_rows_reinserted: [applied.runId] });
    expect(await armedState(env.db.url)).toEqual({ in_flight: 0, switch_on: false, locks: 0, hold: false });
    const chainAfter = await chainOf(env.db.url);
    expect(chainAfter.slice(0, chainBeforeCrash.length)).toEqual(chainBeforeCrash);
    expect(chainAfter).toHaveLength(chainBeforeCrash.length + 1);
    expect(await verifyAuditChain(env.db.pool)).toEqual({ ok: true, rows: chainAfter.length });
  });
});

describe('a restore into a new database', () => {
  it('stays a plain restore of the tables, but leaves no run in flight and the switch off', async () => {
    const url = scratchUrl('restore_new');
    const result = await restoreBackup(applied.backupFile, { into: url, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE });
    expect(result.created).toBe(true);
    expect(result.mismatches).toEqual([]);
    expect(result.reasserted).toMatchObject({
      in_place: false,
      runs_ended: [{ run_id: applied.runId, status: 'running', phase: 'backup', applied: false }],
      switch_was_for: applied.runId,
    });
    expect(await armedState(url)).toEqual({ in_flight: 0, switch_on: false, locks: 0, hold: false });
    const [run] = await one<{ status: string; error_code: string }>(url, 'SELECT status, error_code FROM cutter_governance.run WHERE run_id = $1', [
      applied.runId,
    ]);
    expect(run).toEqual({ status: 'failed', error_code: 'RUN_RESTORED' });
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      const chain = await verifyAuditChain(pool);
      expect(chain.ok).toBe(true);
    } finally {
      await pool.end();
    }
  });
});

describe('a restore whose chain does not continue the live one', () => {
  it('into another database with a chain of its own is refused before anything changes', async () => {
    const other = await createDemoDatabase('restore_other', 'tester');
    scratch.push(other.name);
    try {
      const corpus = await fingerprintCorpusTables(other.pool);
      const chain = await chainOf(other.url);
      const runs = await one(other.url, 'SELECT run_id FROM cutter_governance.run');
      await expect(restoreBackup(applied.backupFile, { into: other.url, force: true, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE })).rejects.toMatchObject({
        code: 'RESTORE_CHAIN_DIVERGED',
        message: expect.stringMatching(/row 1 has another hash in the backup than in the held chain; nothing was restored/) as unknown,
      });
      expect(await fingerprintCorpusTables(other.pool)).toEqual(corpus);
      expect(await chainOf(other.url)).toEqual(chain);
      expect(await one(other.url, 'SELECT run_id FROM cutter_governance.run')).toEqual(runs);
      expect((await armedState(other.url))?.hold).toBe(false);
    } finally {
      await other.pool.end().catch(() => undefined);
    }
  });

  it('into a database whose chain was altered is refused, naming the row', async () => {
    const url = scratchUrl('restore_tampered');
    await restoreBackup(applied.backupFile, { into: url, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // A superuser's edit that skips the append-only trigger.
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(`UPDATE cutter_governance.audit_event SET hash = repeat('a', 64) WHERE seq = 2`);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const chain = await chainOf(url);
    await expect(restoreBackup(applied.backupFile, { into: url, force: true, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE })).rejects.toMatchObject({
      code: 'RESTORE_CHAIN_DIVERGED',
      message: expect.stringContaining('row 2 has another hash') as unknown,
    });
    expect(await chainOf(url)).toEqual(chain);
    expect((await armedState(url))?.hold).toBe(false);
  });
});

describe('an in-place restore of a backup older than migration 020', () => {
  it('applies 020 again, keeps the ledger row of a run the backup predates, and takes back the grants an older cutter gave the exec role', async () => {
    const old = await createDemoDatabase('restore_pre020', 'tester');
    scratch.push(old.name);
    try {
      // The schema as it was before 020: the ledger still refers to the change sets.
      await old.pool.query(
        `ALTER TABLE cutter_governance.execution_ledger ADD CONSTRAINT execution_ledger_run_id_fkey
           FOREIGN KEY (run_id) REFERENCES cutter_governance.cut_change_set (run_id)`,
      );
      await old.pool.query('DELETE FROM cutter_governance.schema_migration WHERE version = 20');
      // An older cutter let the exec role write the corpus directly.
      await old.pool.query(`GRANT INSERT, UPDATE ON public.information_unit TO ${env.cfg.CUTTER_EXEC_ROLE}`);
      const backup = await createBackup(
        backupSpecFrom({ databaseUrl: old.url, recipientFpr: env.cfg.BACKUP_GPG_FPR, outDir: env.cfg.BACKUP_DIR, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE }),
      );
      // Since then: migrated, and a plan applied by a run the backup knows nothing of.
      await migrate(old.url, { execRole: env.cfg.CUTTER_EXEC_ROLE });
      await old.pool.query(
        `INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count) VALUES ('run-after-the-backup', repeat('b', 64), 3)`,
      );
      await appendAudit(old.pool, { actor: 'test', kind: 'test.after_backup', runId: 'run-after-the-backup' });
      const chain = await chainOf(old.url);

      const result = await restoreBackup(backup.file, { into: old.url, force: true, gnupgHome: env.cfg.GNUPGHOME, execRole: env.cfg.CUTTER_EXEC_ROLE });
      expect(result.reasserted).toMatchObject({
        in_place: true,
        migrations_applied: ['020_ledger_stands_alone.sql'],
        ledger_rows_reinserted: ['run-after-the-backup'],
      });
      expect(await one(old.url, 'SELECT run_id FROM cutter_governance.execution_ledger ORDER BY applied_at')).toEqual([
        { run_id: 'run-demo-history-1' }, // in the backup: the demo seed's history
        { run_id: 'run-after-the-backup' },
      ]);
      const after = await chainOf(old.url);
      expect(after.slice(0, chain.length)).toEqual(chain);
      expect(after).toHaveLength(chain.length + 1);
      expect(await verifyAuditChain(old.pool)).toEqual({ ok: true, rows: after.length });
      // The backup brought that grant back; the restore reset the exec role to the matrix.
      expect(await probeGrants(old.pool, env.cfg.CUTTER_EXEC_ROLE)).toMatchObject({ ok: true, excess: [] });
    } finally {
      await old.pool.end().catch(() => undefined);
    }
  });
});
