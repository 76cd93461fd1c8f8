import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../shared/audit/verify.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackup } from '../../shared/backup/create.js';
import { backupSpecFrom } from '../../shared/backup/spec.js';
import { manifestPathFor, readManifest } from '../../shared/backup/manifest.js';
import { restoreBackup } from '../../shared/backup/restore.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { handAddedExecute, runAppliedLive, trustLocalSovereign, type AppliedRun } from '../support/applied-run.js';
import { auditRowHead, reportHead } from '../support/audit-head.js';
import { runCli } from '../support/cli.js';
import { createDemoDatabase, createTestDatabase, dropDatabase, queryOnce, testDatabaseUrl, uniqueDatabaseName } from '../support/db.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';

/**
 * The restore of an applied run's own backup (taken by its backup phase,
 * after the gate consumed the approvals and the EXEC grant turned the switch
 * on): in place it puts back the corpus only and keeps the record; into a
 * new database it abandons what was in flight. Design §2,
 * shared/backup/restore-corpus.ts and settle.ts.
 */

let env: RunEnv;
let applied: AppliedRun;
let sha256: string;
/** The corpus tables before the cut (what its backup holds). */
let corpusBeforeCut: Awaited<ReturnType<RunEnv['corpus']>>;
const scratch: string[] = [];

const one = queryOnce;

async function chainOf(url: string): Promise<{ seq: number; hash: string }[]> {
  return one(url, 'SELECT seq::int, hash FROM cutter_governance.audit_event ORDER BY seq');
}

async function armedState(url: string) {
  const [row] = await one<{ in_flight: number; switch_on: boolean; locks: number }>(
    url,
    `SELECT (SELECT count(*)::int FROM cutter_governance.run WHERE status IN ('queued', 'running', 'awaiting_approval')) AS in_flight,
            cutter_governance.execution_enabled() AS switch_on,
            (SELECT count(*)::int FROM cutter_governance.corpus_lock) AS locks`,
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
  corpusBeforeCut = await env.corpus();
  applied = await runAppliedLive(env, sovereign);
  sha256 = (await readManifest(applied.backupFile)).sha256;
}, 180_000);

afterAll(async () => {
  await env.close();
  for (const name of scratch) await dropDatabase(name);
});

describe('cutter backup restore --force of an applied run’s own backup into its live database', () => {
  it('puts back the corpus only: the run stays as it ended, the ledger and every audit row stay, the restore is one more row', async () => {
    await env.fleet?.close();
    delete env.fleet;
    expect(await env.corpus()).not.toEqual(corpusBeforeCut);
    const chainBefore = await chainOf(env.db.url);
    const reportHeadBefore = await reportHead(env.db.pool, applied.runId);
    const result = await runCli(['backup', 'restore', applied.backupFile, '--into', env.db.url, '--force'], env.env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('in place: the corpus tables only; governance tables, execution ledger and audit chain kept as they were');
    expect(result.stdout).toContain("fingerprints: every restored table equals the manifest's");
    expect(result.stdout).toContain('runs in flight: none; corpus locks: none held');

    // The corpus as the backup holds it: as it was before the cut.
    expect(await env.corpus()).toEqual(corpusBeforeCut);
    expect(await armedState(env.db.url)).toEqual({ in_flight: 0, switch_on: false, locks: 0 });
    const [run] = await one<{ status: string; verdict: string }>(env.db.url, 'SELECT status, verdict FROM cutter_governance.run WHERE run_id = $1', [
      applied.runId,
    ]);
    expect(run).toEqual({ status: 'succeeded', verdict: 'PASS' });
    // The demo seed's history applied its enactment first (docs/design.md §2).
    expect(await one(env.db.url, 'SELECT run_id, plan_sha256 = $1 AS same FROM cutter_governance.execution_ledger ORDER BY applied_at', [applied.planSha256])).toEqual([
      { run_id: 'run-demo-history-1', same: false },
      { run_id: applied.runId, same: true },
    ]);

    // Every row the chain had, as it was (the cut's events among them), then the restore's own row.
    const chainAfter = await chainOf(env.db.url);
    expect(chainAfter.slice(0, chainBefore.length)).toEqual(chainBefore);
    expect(chainAfter).toHaveLength(chainBefore.length + 1);
    const kinds = await one<{ kind: string }>(env.db.url, 'SELECT kind FROM cutter_governance.audit_event WHERE run_id = $1', [applied.runId]);
    expect(kinds.map((k) => k.kind)).toContain('run.verified');
    const [restored] = await one<{ kind: string; detail: Record<string, unknown> }>(
      env.db.url,
      'SELECT kind, detail FROM cutter_governance.audit_event ORDER BY seq DESC LIMIT 1',
    );
    expect(restored?.kind).toBe('backup.restored');
    expect(restored?.detail).toMatchObject({ file: applied.backupFile, sha256, backup_run_id: applied.runId, scope: 'corpus', runs_abandoned: [] });
    const verified = await runCli(['audit', 'verify'], env.env);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout.trim()).toBe(`audit chain intact: ${chainAfter.length} row(s)`);
    // The head the run's report took out of the database when it ended is still in the chain.
    expect((await runCli(['audit', 'verify', '--head', reportHeadBefore], env.env)).code).toBe(0);
  });

  it('a hand-added execute job for that run, with a fleet running, applies nothing; a new run on the target enqueues and succeeds', async () => {
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

    const next = await env.enqueue('dry');
    expect((await env.waitForEnd(next, 90_000)).status).toBe('succeeded');
    await env.fleet?.close();
    delete env.fleet;
  });

  it('a corpus that does not match the manifest is refused inside the transaction: nothing changes', async () => {
    const manifestFile = manifestPathFor(applied.backupFile);
    const original = readFileSync(manifestFile, 'utf8');
    const manifest = JSON.parse(original) as { tables: { name: string; content_hash: string }[] };
    const versions = manifest.tables.find((t) => t.name === 'public.unit_version');
    if (!versions) throw new Error('the manifest has no public.unit_version');
    versions.content_hash = 'f'.repeat(64);
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const corpus = await env.corpus();
    const chain = await chainOf(env.db.url);
    try {
      await expect(restoreBackup(applied.backupFile, { into: env.db.url, force: true, gnupgHome: env.cfg.GNUPGHOME })).rejects.toMatchObject({
        code: 'BACKUP_DRILL_MISMATCH',
        message: expect.stringContaining('public.unit_version; nothing was restored') as unknown,
      });
    } finally {
      writeFileSync(manifestFile, original);
    }
    expect(await env.corpus()).toEqual(corpus);
    expect(await chainOf(env.db.url)).toEqual(chain);
    const scratchLeft = await one(env.db.url, `SELECT datname FROM pg_database WHERE datname LIKE 'cutter\\_restore\\_%'`);
    expect(scratchLeft).toEqual([]);
  });
});

describe('a restore into a new database (disaster recovery)', () => {
  it('restores everything, abandons the run that was in flight in the backup, frees its lock and turns the switch off', async () => {
    const url = scratchUrl('restore_new');
    const result = await runCli(['backup', 'restore', applied.backupFile, '--into', url], env.env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('whole database: every object the backup holds');
    expect(result.stdout).toContain(`runs abandoned (RUN_RESTORED): ${applied.runId} (running at backup); their corpus locks released`);
    expect(result.stdout).toContain(`kill switch: off (was set for ${applied.runId})`);
    expect(await armedState(url)).toEqual({ in_flight: 0, switch_on: false, locks: 0 });
    const [run] = await one<{ status: string; error_code: string; change_set: string }>(
      url,
      `SELECT r.status, r.error_code, c.status AS change_set FROM cutter_governance.run r
         JOIN cutter_governance.cut_change_set c USING (run_id) WHERE r.run_id = $1`,
      [applied.runId],
    );
    expect(run).toEqual({ status: 'abandoned', error_code: 'RUN_RESTORED', change_set: 'abandoned' });
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      expect((await verifyAuditChain(pool)).ok).toBe(true);
      // The abandoned run's report names the chain's head with the restore's row in it.
      expect(await reportHead(pool, applied.runId)).toBe(await auditRowHead(pool, 'backup.restored'));
    } finally {
      await pool.end();
    }
  });
});

describe('a restore on another server', () => {
  it('stamps the records of writes whose transaction ids this server has not reached as history, so no new run counts them', async () => {
    // A record made on a server further along than this one: its transaction id is ahead of every id here.
    const source = await createTestDatabase('restore_foreign_src');
    await source.pool.query(`INSERT INTO cutter_governance.corpus_write (xact, corpus, tbl, op, rows)
                       VALUES ((pg_current_xact_id()::text::bigint + 1000000000)::text::xid8, 'ICX-WORK', 'public.information_unit', 'update', 1)`);
    const dir = mkdtempSync(join(tmpdir(), 'cutter-foreign-'));
    try {
      const { file } = await createBackup(backupSpecFrom({ databaseUrl: source.url, recipientFpr: env.cfg.BACKUP_GPG_FPR ?? '', outDir: dir, gnupgHome: env.cfg.GNUPGHOME }));
      const url = scratchUrl('restore_foreign');
      const result = await runCli(['backup', 'restore', file, '--into', url], env.env);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('records of corpus writes made on another server, stamped as history (docs/proof.md): 1');
      const [left] = await one<{ ahead: number; unseen: number }>(
        url,
        `SELECT count(*) FILTER (WHERE xact >= pg_current_xact_id())::int AS ahead,
                count(*) FILTER (WHERE NOT pg_visible_in_snapshot(xact, pg_current_snapshot()))::int AS unseen
           FROM cutter_governance.corpus_write`,
      );
      expect(left).toEqual({ ahead: 0, unseen: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await source.drop();
    }
  });
});

describe('an in-place restore of a backup that is not of this database', () => {
  it('into another database with a chain of its own is refused before anything changes', async () => {
    const other = await createDemoDatabase('restore_other', 'tester');
    scratch.push(other.name);
    try {
      const corpus = await fingerprintCorpusTables(other.pool);
      const chain = await chainOf(other.url);
      const runs = await one(other.url, 'SELECT run_id FROM cutter_governance.run');
      await expect(restoreBackup(applied.backupFile, { into: other.url, force: true, gnupgHome: env.cfg.GNUPGHOME })).rejects.toMatchObject({
        code: 'RESTORE_CHAIN_DIVERGED',
        message: expect.stringMatching(/row 1 has another hash in the backup than in the database; nothing was restored/) as unknown,
      });
      expect(await fingerprintCorpusTables(other.pool)).toEqual(corpus);
      expect(await chainOf(other.url)).toEqual(chain);
      expect(await one(other.url, 'SELECT run_id FROM cutter_governance.run')).toEqual(runs);
    } finally {
      await other.pool.end().catch(() => undefined);
    }
  });

  it('into a database whose chain was altered is refused, naming the row', async () => {
    const url = scratchUrl('restore_tampered');
    await restoreBackup(applied.backupFile, { into: url, gnupgHome: env.cfg.GNUPGHOME });
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
    await expect(restoreBackup(applied.backupFile, { into: url, force: true, gnupgHome: env.cfg.GNUPGHOME })).rejects.toMatchObject({
      code: 'RESTORE_CHAIN_DIVERGED',
      message: expect.stringContaining('row 2 has another hash') as unknown,
    });
    expect(await chainOf(url)).toEqual(chain);
  });
});
