import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatHead, headInReport, type ChainHead } from '../../shared/audit/head.js';
import { readManifest } from '../../shared/backup/manifest.js';
import { createRedis } from '../../shared/redis.js';
import { enqueueRun } from '../../producers/flow/enqueue.js';
import { auditRowHead, reportHead as storedReportHead } from '../support/audit-head.js';
import { runCli } from '../support/cli.js';
import { startPrivateRedis } from '../support/redis-server.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, DEMO_SNAPSHOT, type RunEnv } from '../support/run-env.js';
import { startReceiver, webhookSecret, type Receiver } from '../support/webhook-receiver.js';

/**
 * The audit chain's head, written outside PostgreSQL when a run ends (its
 * report, its webhook event, its backup's manifest), catches what the walk
 * of the chain cannot: a tail cut off, as an in-place restore of an older
 * backup would leave it, and a row rewritten with every later row re-linked,
 * as a superuser could. Design §2, `cutter audit verify --head`.
 */

interface AuditRow {
  seq: number;
  /** As text: a Date would drop the microseconds the row's hash covers. */
  at: string;
  actor: string;
  kind: string;
  run_id: string | null;
  detail: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

let receiver: Receiver;
let env: RunEnv;
let runId: string;
/** The head the run's report names, and that report saved as a user would (`cutter status RUN --report > FILE`). */
let reportHead: ChainHead;
let reportFile: string;
/** The head in the manifest of the run's own backup: the chain's end in the dump's snapshot. */
let backupHead: ChainHead;

async function chain(): Promise<AuditRow[]> {
  const { rows } = await env.db.pool.query<AuditRow>('SELECT seq::int, at::text AS at, actor, kind, run_id, detail, prev_hash, hash FROM cutter_governance.audit_event ORDER BY seq');
  return rows;
}

/** As a superuser may: with triggers off (the append-only ones too), in one transaction. */
async function asSuperuserWithoutTriggers(work: (q: (sql: string, params?: unknown[]) => Promise<unknown>) => Promise<unknown>): Promise<void> {
  const client = await env.db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    await work((sql, params) => client.query(sql, params));
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

const verify = (...args: string[]) => runCli(['audit', 'verify', ...args], env.env);

beforeAll(async () => {
  const secret = webhookSecret(randomBytes(32));
  receiver = await startReceiver(() => ({ status: 204 }));
  env = await createRunEnv('audithead', {
    env: { CUTTER_WEBHOOK_URLS: `${receiver.url}/hooks`, CUTTER_WEBHOOK_SECRET: secret },
    fleet: { notify: { sweepIntervalMs: 200 } },
  });
  await env.startFleet();
}, 60_000);

afterAll(async () => {
  await env.close();
  await receiver.close();
});

describe('the audit chain head of a run that ended', () => {
  it('is in its report (the end audit row), its webhook event and its backup manifest', async () => {
    runId = await env.enqueue('dry');
    expect((await env.waitForEnd(runId, 90_000)).status).toBe('succeeded');

    const status = await runCli(['status', runId, '--report'], env.env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^## Audit chain\n\naudit chain head: \d+:[0-9a-f]{64}\n/m);
    reportFile = join(env.dir, 'report.md');
    writeFileSync(reportFile, status.stdout);
    reportHead = headInReport(status.stdout, 'report');
    // The head includes the run's own end: its run.verified row, the last row when the run ended.
    const rows = await chain();
    const end = rows.find((r) => r.run_id === runId && r.kind === 'run.verified');
    expect(reportHead).toEqual({ seq: end?.seq, hash: end?.hash });

    // The run.succeeded webhook event carries the same head.
    const body = await waitFor('the run.succeeded webhook', () => {
      for (const r of receiver.requests) {
        const parsed = JSON.parse(r.body) as { type: string; data: { run_id: string; audit_head: string | null } };
        if (parsed.type === 'run.succeeded' && parsed.data.run_id === runId) return parsed;
      }
      return undefined;
    }, { deadlineMs: 30_000 });
    expect(body.data.audit_head).toBe(formatHead(reportHead));

    // The run's backup manifest names the chain's end in the dump's snapshot: a row the chain holds, before the end.
    const { rows: backup } = await env.db.pool.query<{ file: string }>(
      `SELECT summary->>'file' AS file FROM cutter_governance.run_phase WHERE run_id = $1 AND phase = 'backup'`,
      [runId],
    );
    const manifest = await readManifest(backup[0]?.file ?? '?');
    expect(manifest.audit_head).toMatch(/^\d+:[0-9a-f]{64}$/);
    const [seq, hash] = (manifest.audit_head ?? '').split(':');
    backupHead = { seq: Number(seq), hash: hash ?? '' };
    expect(rows.find((r) => r.seq === backupHead.seq)?.hash).toBe(backupHead.hash);
    expect(backupHead.seq).toBeLessThan(reportHead.seq);
    // Taken by this run's backup phase, so after the run was enqueued.
    expect(backupHead.seq).toBeGreaterThanOrEqual(rows.find((r) => r.run_id === runId && r.kind === 'run.enqueued')?.seq ?? Infinity);

    const held = await verify('--report', reportFile);
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout).toBe(`audit chain intact: ${rows.length} row(s)\nhead ${formatHead(reportHead)}: held (row ${reportHead.seq} of ${rows.length}, same hash)\n`);
    expect((await verify('--head', manifest.audit_head ?? '?')).code).toBe(0);
  }, 120_000);

  it('is in the report of a run whose jobs never reached Redis, which ends failed and announced like a failed phase', async () => {
    // A Redis of its own that answers but refuses every write: full, with nothing it may evict.
    const full = await startPrivateRedis({ appendOnly: false });
    const redis = createRedis(full.url);
    try {
      await redis.config('SET', 'maxmemory', '1');
      await expect(
        enqueueRun(
          { pool: env.db.pool, redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX },
          { target: 'icx-work', snapshotPath: DEMO_SNAPSHOT, mode: 'dry', operator: 'tester', approvalWindowS: 3600 },
        ),
      ).rejects.toMatchObject({ code: 'ENQUEUE_FAILED' });
    } finally {
      redis.disconnect();
      await full.stop();
    }
    const { rows } = await env.db.pool.query<{ run_id: string; status: string; failed_phase: string; locks: number }>(
      `SELECT run_id, status, failed_phase, (SELECT count(*)::int FROM cutter_governance.corpus_lock) AS locks
         FROM cutter_governance.run WHERE error_code = 'ENQUEUE_FAILED'`,
    );
    expect(rows).toEqual([{ run_id: expect.any(String) as string, status: 'failed', failed_phase: 'precheck', locks: 0 }]);
    const failed = rows[0]?.run_id ?? '?';
    expect(await storedReportHead(env.db.pool, failed)).toBe(await auditRowHead(env.db.pool, 'run.failed', failed));
    const { rows: events } = await env.db.pool.query<{ type: string; audit_head: string }>(
      `SELECT type, data->>'audit_head' AS audit_head FROM cutter_governance.notification WHERE run_id = $1`,
      [failed],
    );
    expect(events).toEqual([{ type: 'run.failed', audit_head: await storedReportHead(env.db.pool, failed) }]);
  }, 60_000);

  it('catches a tail cut off as an in-place restore of the older backup would leave it, which the plain walk does not', async () => {
    await env.fleet?.close();
    delete env.fleet;
    // The chain as the run's backup holds it: every row after the backup's head gone.
    const before = await chain();
    const cut = before.filter((r) => r.seq > backupHead.seq);
    await asSuperuserWithoutTriggers((q) => q('DELETE FROM cutter_governance.audit_event WHERE seq > $1', [backupHead.seq]));

    const plain = await verify();
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe(`audit chain intact: ${backupHead.seq} row(s)\n`);

    const caught = await verify('--report', reportFile);
    expect(caught.code).toBe(1);
    expect(caught.stdout).toBe('');
    expect(caught.stderr).toBe(
      `cutter: the audit chain no longer contains head ${formatHead(reportHead)}: the chain ends at row ${backupHead.seq}; ` +
        `rows ${backupHead.seq + 1}..${reportHead.seq} are missing (its tail was cut, as a restore of an older backup would) [AUDIT_HEAD_MISSING]\n`,
    );
    const json = await verify('--head', formatHead(reportHead), '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      ok: false,
      rows: backupHead.seq,
      first_bad: null,
      head: { head: formatHead(reportHead), state: 'missing', chain_ends_at: backupHead.seq, missing_rows: { from: backupHead.seq + 1, to: reportHead.seq }, actual_hash: null },
    });
    // The backup's own head is still there: it is the chain's end now.
    expect((await verify('--head', formatHead(backupHead))).code).toBe(0);

    // Put back exactly as they were, the rows make the report's head held again.
    await asSuperuserWithoutTriggers(async (q) => {
      for (const r of cut) {
        await q(
          `INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash) VALUES ($1, $2::timestamptz, $3, $4, $5, $6::jsonb, $7, $8)`,
          [r.seq, r.at, r.actor, r.kind, r.run_id, JSON.stringify(r.detail), r.prev_hash, r.hash],
        );
      }
    });
    expect(await chain()).toEqual(before);
    const back = await verify('--report', reportFile);
    expect(back.code, back.stderr).toBe(0);
  });

  it('catches a row rewritten before the head with every later row re-linked, which the plain walk does not', async () => {
    const before = await chain();
    const target = before.find((r) => r.run_id === runId && r.kind === 'run.enqueued');
    if (!target) throw new Error('the run has no run.enqueued row');
    // Rewrite the row's content, then recompute its hash and every later row's link and hash, as a superuser could.
    await asSuperuserWithoutTriggers(async (q) => {
      await q(`UPDATE cutter_governance.audit_event SET detail = detail || '{"mode": "live"}'::jsonb WHERE seq = $1`, [target.seq]);
      for (const r of before.filter((x) => x.seq >= target.seq)) {
        await q(
          `UPDATE cutter_governance.audit_event e
              SET prev_hash = p.hash,
                  hash = encode(sha256(convert_to(cutter_governance.audit_canonical(e.seq, e.at, e.actor, e.kind, e.run_id, e.detail, p.hash), 'UTF8')), 'hex')
             FROM cutter_governance.audit_event p
            WHERE e.seq = $1 AND p.seq = $1 - 1`,
          [r.seq],
        );
      }
    });
    const after = await chain();
    expect(after.find((r) => r.seq === reportHead.seq)?.hash).not.toBe(reportHead.hash);

    const plain = await verify();
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe(`audit chain intact: ${after.length} row(s)\n`);

    const caught = await verify('--head', formatHead(reportHead));
    expect(caught.code).toBe(1);
    const actual = after.find((r) => r.seq === reportHead.seq)?.hash ?? '?';
    expect(caught.stderr).toBe(
      `cutter: the audit chain no longer contains head ${formatHead(reportHead)}: row ${reportHead.seq} has hash ${actual}; ` +
        `the chain was rewritten at or before row ${reportHead.seq} [AUDIT_HEAD_MISMATCH]\n`,
    );
    const json = await verify('--report', reportFile, '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, first_bad: null, head: { state: 'mismatch', chain_ends_at: after.length, missing_rows: null, actual_hash: actual } });
  });

  it('refuses a malformed head, a report without one, an unreadable file and both options at once, before reading the chain (exit 2)', async () => {
    const noHead = join(env.dir, 'no-head.md');
    writeFileSync(noHead, '# Run r-1\n\n## Verdict\n\n**PASS**\n');
    const cases: [string[], string][] = [
      [['--head', '12:abc'], 'AUDIT_HEAD_MALFORMED'],
      [['--head', `0:${'a'.repeat(64)}`], 'AUDIT_HEAD_MALFORMED'],
      [['--report', noHead], 'AUDIT_HEAD_NOT_IN_REPORT'],
      [['--report', join(env.dir, 'absent.md')], 'FILE_UNREADABLE'],
      [['--head', formatHead(reportHead), '--report', reportFile], 'AUDIT_HEAD_OPTIONS'],
    ];
    for (const [args, code] of cases) {
      const answer = await runCli(['audit', 'verify', ...args], { ...env.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
      expect(answer.code, `${args.join(' ')}: ${answer.stderr}`).toBe(2);
      expect(answer.stderr).toMatch(new RegExp(`^cutter: .+ \\[${code}\\]\\n$`));
    }
    const json = await runCli(['audit', 'verify', '--head', 'nonsense', '--json'], env.env);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'AUDIT_HEAD_MALFORMED', message: expect.stringContaining('SEQ:HASH') as string } });
  });
});
