import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireCorpusLock, findCorpusLock, releaseCorpusLock } from '../../shared/targets/lock.js';
import { registerTarget } from '../../shared/targets/intake.js';
import { getTarget, listTargets } from '../../shared/targets/registry.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { insertRunRow, insertTargetRow, seedUnits } from '../support/plan-fixtures.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('targets');
  await seedUnits(db.pool, 'T', [{ key: 'T/1', state: 'draft', body: 't' }]);
  await seedUnits(db.pool, 'PROT', [{ key: 'PROT/1', state: 'enacted', body: 'p' }]);
  await seedUnits(db.pool, 'BUSY', [{ key: 'BUSY/1', state: 'draft', body: 'b' }]);
  await insertTargetRow(db.pool, { name: 'prot', corpus: 'PROT', protected: true });
  await insertTargetRow(db.pool, { name: 'busy', corpus: 'BUSY' });
  await insertTargetRow(db.pool, { name: 'locks', corpus: 'L0' , allowEmpty: true });
});
afterAll(async () => {
  await db.drop();
});

const file = (over: Record<string, unknown> = {}, drop: string[] = []) => {
  const reg: Record<string, unknown> = {
    name: 't-ok',
    corpus: 'T',
    owner: 'ops-team',
    protected: false,
    max_units: 50,
    allowed_transitions: ['new->draft', 'draft->enacted', 'revise'],
    notes: 'test',
    ...over,
  };
  for (const k of drop) delete reg[k];
  return JSON.stringify(reg);
};

const verdicts = (r: { criteria: { id: string; pass: boolean }[] }) => Object.fromEntries(r.criteria.map((c) => [c.id, c.pass]));

describe('target intake: C1–C4', () => {
  it('registers a target when all four pass, with registered_by and registered_utc', async () => {
    const before = Date.now();
    const r = await registerTarget(db.pool, file(), 'alice');
    expect(verdicts(r)).toEqual({ C1: true, C2: true, C3: true, C4: true });
    expect(r.target).toMatchObject({ name: 't-ok', corpus: 'T', owner: 'ops-team', protected: false, maxUnits: 50, allowEmptyCorpus: false, registeredBy: 'alice', notes: 'test' });
    expect(r.target?.registeredUtc.getTime()).toBeGreaterThanOrEqual(before - 5000);
    expect(await getTarget(db.pool, 't-ok')).toEqual(r.target);
    const audit = await db.pool.query(`SELECT actor, detail->>'name' AS name FROM cutter_governance.audit_event WHERE kind = 'target.register'`);
    expect(audit.rows).toEqual([{ actor: 'alice', name: 't-ok' }]);
  });

  it('C1 fails alone: an unknown field, a missing field, a bad value — nothing inserted', async () => {
    const cases: [string, RegExp][] = [
      [file({ name: 't-c1a', protectd: true }), /unknown field "protectd"/],
      [file({ name: 't-c1b' }, ['owner']), /owner: missing/],
      [file({ name: 't-c1c', max_units: 0 }), /max_units: must be a whole number ≥ 1/],
      [file({ name: 't-c1d', allowed_transitions: ['enacted->draft'] }), /allowed_transitions\.0: each must be one of/],
      ['{ not json', /not valid JSON/],
    ];
    for (const [text, reason] of cases) {
      const r = await registerTarget(db.pool, text, 'alice');
      expect(r.target).toBeNull();
      expect(r.criteria).toHaveLength(1);
      expect(r.criteria[0]).toMatchObject({ id: 'C1', pass: false, reason: expect.stringMatching(reason) as unknown });
    }
    expect((await listTargets(db.pool)).map((t) => t.name).filter((n) => n.startsWith('t-c1'))).toEqual([]);
  });

  it('C1 fails alone for a name already registered', async () => {
    const r = await registerTarget(db.pool, file({ name: 'prot', corpus: 'T' }), 'bob');
    expect(verdicts(r)).toEqual({ C1: false, C2: true, C3: true, C4: true });
    expect(r.criteria[0]?.reason).toMatch(/target prot is already registered/);
  });

  it('C2 fails alone for a corpus with no units, and passes when the target allows an empty corpus', async () => {
    const r = await registerTarget(db.pool, file({ name: 't-empty', corpus: 'NOTHING' }), 'alice');
    expect(verdicts(r)).toEqual({ C1: true, C2: false, C3: true, C4: true });
    expect(r.criteria[1]?.reason).toMatch(/corpus NOTHING has no units/);
    expect(r.target).toBeNull();
    const allowed = await registerTarget(db.pool, file({ name: 't-empty', corpus: 'NOTHING', allow_empty_corpus: true }), 'alice');
    expect(verdicts(allowed)).toEqual({ C1: true, C2: true, C3: true, C4: true });
    expect(allowed.target?.allowEmptyCorpus).toBe(true);
  });

  it('C3 fails alone for an unprotected target of a protected corpus; a protected registration passes', async () => {
    const r = await registerTarget(db.pool, file({ name: 't-side-door', corpus: 'PROT' }), 'alice');
    expect(verdicts(r)).toEqual({ C1: true, C2: true, C3: false, C4: true });
    expect(r.criteria[2]?.reason).toMatch(/corpus PROT is protected by target prot/);
    const prot = await registerTarget(db.pool, file({ name: 't-prot-2', corpus: 'PROT', protected: true }), 'alice');
    expect(verdicts(prot)).toEqual({ C1: true, C2: true, C3: true, C4: true });
  });

  it('C4 fails alone while an active run holds the corpus, and passes once the lock is stale', async () => {
    await insertRunRow(db.pool, { runId: 'run-busy-0001', target: 'busy', corpus: 'BUSY', status: 'awaiting_approval' });
    await acquireCorpusLock(db.pool, { corpus: 'BUSY', runId: 'run-busy-0001' });
    const r = await registerTarget(db.pool, file({ name: 't-busy', corpus: 'BUSY' }), 'alice');
    expect(verdicts(r)).toEqual({ C1: true, C2: true, C3: true, C4: false });
    expect(r.criteria[3]?.reason).toMatch(/corpus BUSY is held by run run-busy-0001 \(awaiting_approval/);
    await db.pool.query(`UPDATE cutter_governance.run SET status = 'failed' WHERE run_id = 'run-busy-0001'`);
    const later = await registerTarget(db.pool, file({ name: 't-busy', corpus: 'BUSY' }), 'alice');
    expect(verdicts(later)).toEqual({ C1: true, C2: true, C3: true, C4: true });
  });
});

describe('the corpus lock (C4)', () => {
  let n = 0;
  async function run(status = 'running'): Promise<string> {
    n += 1;
    const runId = `run-lock-${String(n).padStart(4, '0')}`;
    await insertRunRow(db.pool, { runId, target: 'locks', corpus: 'L0', status });
    return runId;
  }

  it('is idempotent for its holder and refuses another active run, naming the holder', async () => {
    const a = await run();
    const b = await run();
    await acquireCorpusLock(db.pool, { corpus: 'L1', runId: a });
    await acquireCorpusLock(db.pool, { corpus: 'L1', runId: a });
    await expect(acquireCorpusLock(db.pool, { corpus: 'L1', runId: b })).rejects.toMatchObject({
      code: 'C4_CORPUS_LOCKED',
      kind: 'refused',
      message: expect.stringContaining(`held by run ${a} (running`) as unknown,
    });
    expect((await findCorpusLock(db.pool, 'L1'))?.runId).toBe(a);
    await releaseCorpusLock(db.pool, a);
    await acquireCorpusLock(db.pool, { corpus: 'L1', runId: b });
    expect((await findCorpusLock(db.pool, 'L1'))?.runId).toBe(b);
  });

  it('takes over a lock left by a finished run', async () => {
    const dead = await run('failed');
    const next = await run();
    await db.pool.query('INSERT INTO cutter_governance.corpus_lock (corpus, run_id) VALUES ($1, $2)', ['L2', dead]);
    await acquireCorpusLock(db.pool, { corpus: 'L2', runId: next });
    expect((await findCorpusLock(db.pool, 'L2'))?.runId).toBe(next);
  });

  it('two runs racing for the same corpus: exactly one wins, every time', async () => {
    for (let round = 0; round < 15; round += 1) {
      const contenders = [await run(), await run(), await run()];
      const corpus = `RACE${round}`;
      // Each on its own connection, inside a transaction, so the inserts really overlap.
      const results = await Promise.allSettled(
        contenders.map(async (runId) => {
          const client = await db.pool.connect();
          try {
            await client.query('BEGIN');
            await acquireCorpusLock(client, { corpus, runId });
            await client.query('COMMIT');
            return runId;
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          } finally {
            client.release();
          }
        }),
      );
      const winners = results.filter((r) => r.status === 'fulfilled');
      const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(winners).toHaveLength(1);
      expect(losers.map((l) => (l.reason as { code?: string }).code)).toEqual(['C4_CORPUS_LOCKED', 'C4_CORPUS_LOCKED']);
      const holder = await findCorpusLock(db.pool, corpus);
      expect(holder?.runId).toBe((winners[0] as PromiseFulfilledResult<string>).value);
    }
  });

  it('a run holds one corpus only', async () => {
    const a = await run();
    await acquireCorpusLock(db.pool, { corpus: 'L3', runId: a });
    await expect(acquireCorpusLock(db.pool, { corpus: 'L4', runId: a })).rejects.toMatchObject({ code: 'CORPUS_LOCK_OTHER_CORPUS', message: expect.stringContaining('already holds corpus L3') as unknown });
  });
});
