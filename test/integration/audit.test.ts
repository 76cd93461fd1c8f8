import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../shared/audit/append.js';
import { verifyAuditChain } from '../../shared/audit/verify.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('audit');
  for (let i = 1; i <= 5; i += 1) {
    await appendAudit(db.pool, { actor: 'tester', kind: 'test.event', runId: `run-${i}`, detail: { i, note: 'ü → ok' } });
  }
});
afterAll(async () => {
  await db.drop();
});

const refusal = async (sql: string): Promise<string> => {
  try {
    await db.pool.query(sql);
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe('audit_event', () => {
  it('chains every row to the previous one', async () => {
    const { rows } = await db.pool.query<{ seq: number; prev_hash: string; hash: string }>(
      'SELECT seq, prev_hash, hash FROM cutter_governance.audit_event ORDER BY seq',
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(rows[0]?.prev_hash).toBe('0'.repeat(64));
    for (let i = 1; i < rows.length; i += 1) expect(rows[i]?.prev_hash).toBe(rows[i - 1]?.hash);
    expect(await verifyAuditChain(db.pool)).toEqual({ ok: true, rows: 5 });
  });

  it('refuses UPDATE, DELETE and TRUNCATE', async () => {
    expect(await refusal(`UPDATE cutter_governance.audit_event SET actor = 'mallory' WHERE seq = 2`)).toMatch(/append-only: UPDATE refused/);
    expect(await refusal(`DELETE FROM cutter_governance.audit_event WHERE seq = 2`)).toMatch(/append-only: DELETE refused/);
    expect(await refusal(`TRUNCATE cutter_governance.audit_event`)).toMatch(/append-only: TRUNCATE refused/);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM cutter_governance.audit_event');
    expect(rows[0]).toEqual({ n: 5 });
  });

  it('`cutter audit verify` passes an intact chain and names the row a superuser edited', async () => {
    const intact = await runCli(['audit', 'verify'], { DATABASE_URL: db.url });
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain('audit chain intact: 5 row(s)');

    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE cutter_governance.audit_event DISABLE TRIGGER audit_event_no_update');
      await client.query(`UPDATE cutter_governance.audit_event SET detail = '{"i": 99}' WHERE seq = 3`);
      await client.query('ALTER TABLE cutter_governance.audit_event ENABLE TRIGGER audit_event_no_update');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const broken = await runCli(['audit', 'verify'], { DATABASE_URL: db.url });
    expect(broken.code).toBe(1);
    expect(broken.stderr.trim().split('\n')).toEqual([
      'cutter: audit chain broken at row 3: row content does not match its hash (edited) [AUDIT_CHAIN_BROKEN]',
    ]);
  });
});
