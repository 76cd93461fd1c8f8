import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { takeHandoff } from '../../shared/approval/handoff.js';
import { releaseGate } from '../../shared/approval/release.js';
import { storeDecision } from '../../shared/approval/store.js';
import { parseConfig } from '../../shared/config.js';
import type { Phase } from '../../shared/jobs/catalog.js';
import { createRedis } from '../../shared/redis.js';
import { processApprovalGate } from '../../workers/approval-gate/process.js';
import type { PhaseDeps } from '../../workers/context.js';
import { phaseRunner } from '../../workers/phase-runner.js';
import { approvalDatabase, arrivedApproval } from '../support/approval-db.js';
import { insertPausedRun, type PausedRun } from '../support/paused-run.js';
import { testQueuePrefix } from '../support/prefix.js';
import { approvalFor, envelopeOf, makeKey, writeTrustedKeys } from '../support/sovereign.js';

/**
 * The endpoint hands the gate the read its store made (migration 018), so
 * the gate opens in one round trip: the opening itself. The handoff is never
 * trusted: the gate judges it like its own read, and the opening happens only
 * if PostgreSQL, under the run's lock, still holds exactly what was judged.
 * Anything else in Redis (tampered, stale, malformed) costs a read of
 * PostgreSQL, and the decision is the one PostgreSQL's rows give.
 */

const alice = makeKey('alice');
const bob = makeKey('bob');
const env = approvalDatabase('gate-handoff', [alice, bob]);
const keysDir = mkdtempSync(join(tmpdir(), 'cutter-gate-handoff-keys-'));
const redis = createRedis(inject('redisUrl'));
const prefix = testQueuePrefix('handoff');
const gateQueue = new Queue('approval-gate', { connection: redis, prefix });

afterAll(async () => {
  await gateQueue.obliterate({ force: true });
  await gateQueue.close();
  redis.disconnect();
  rmSync(keysDir, { recursive: true, force: true });
});

/** Worker deps over a pool that records every statement it is sent. */
function worker(): { deps: PhaseDeps; statements: string[] } {
  const statements: string[] = [];
  const pool = new Proxy(env.db.pool, {
    get(target, prop, receiver) {
      if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
      return (text: unknown, ...rest: unknown[]) => {
        statements.push(typeof text === 'string' ? text : JSON.stringify(text));
        return (target.query as (...a: unknown[]) => unknown)(text, ...rest);
      };
    },
  });
  const cfg = parseConfig({
    DATABASE_URL: env.db.url,
    REDIS_URL: inject('redisUrl'),
    CUTTER_QUEUE_PREFIX: prefix,
    SOVEREIGN_KEYS: writeTrustedKeys(keysDir, [alice, bob]),
    SOVEREIGN_QUORUM: '1',
    LOG_LEVEL: 'silent',
  });
  const queues = { 'approval-gate': gateQueue } as Record<Phase, Queue>;
  return { deps: { pool, cfg, log: pino({ level: 'silent' }), redis, queues }, statements };
}

/** One delivery of the run's gate job to the worker, as BullMQ hands it over. */
function wake(deps: PhaseDeps, runId: string): Promise<Record<string, unknown>> {
  const job = { id: `${runId}.approval-gate`, data: { runId }, attemptsMade: 0, opts: { attempts: 1 } } as unknown as Job;
  return phaseRunner('approval-gate', processApprovalGate, deps)(job);
}

/** A paused run with SG_1 by alice and EXEC by bob stored as the endpoint stores them; the handoff the last store answered. */
async function approvedRun(): Promise<PausedRun & { handoff: string }> {
  await env.db.pool.query(`SELECT cutter_governance.disarm_execution('test')`);
  const run = await insertPausedRun(env.db.pool);
  await storeDecision(env.db.pool, await arrivedApproval(env, run, 'SG_1', alice));
  const { handoff } = await storeDecision(env.db.pool, await arrivedApproval(env, run, 'EXEC', bob));
  return { ...run, handoff };
}

/** Leaves a handoff for runId exactly as the endpoint does when it releases the gate (the job itself is absent: nothing to promote). */
async function leave(runId: string, handoff: string): Promise<void> {
  expect(await releaseGate(gateQueue, runId, { waitMs: 0, handoff })).toBe('gone');
}

async function outcome(runId: string) {
  const { rows } = await env.db.pool.query<{ status: string; consumed: number; released: number; bypassed: number }>(
    `SELECT r.status,
            (SELECT count(*)::int FROM cutter_governance.review_decision d WHERE d.run_id = r.run_id AND d.consumed_utc IS NOT NULL) AS consumed,
            (SELECT count(*)::int FROM cutter_governance.audit_event e WHERE e.run_id = r.run_id AND e.kind = 'gate.released') AS released,
            (SELECT count(*)::int FROM cutter_governance.audit_event e WHERE e.run_id = r.run_id AND e.kind = 'gate.released_without_approval') AS bypassed
       FROM cutter_governance.run r WHERE r.run_id = $1`,
    [runId],
  );
  return rows[0];
}

/** The handoff with its reads changed by edit. */
function edited(handoff: string, edit: (reads: { unconsumed: Record<string, unknown>[] }) => void): string {
  const parsed = JSON.parse(handoff) as { reads: { unconsumed: Record<string, unknown>[] } };
  edit(parsed.reads);
  return JSON.stringify(parsed);
}

describe("the endpoint's handoff to the gate", () => {
  it('opens the gate with one statement, the opening, and is taken once', async () => {
    const run = await approvedRun();
    await leave(run.runId, run.handoff);
    const { deps, statements } = worker();
    const summary = await wake(deps, run.runId);
    expect(summary).toMatchObject({ released: 'by valid approvals', sg_1_keys: [alice.keyId], exec_keys: [bob.keyId] });
    expect(statements).toHaveLength(1);
    expect(statements[0]).toContain('cutter_governance.open_gate(');
    expect(await outcome(run.runId)).toEqual({ status: 'running', consumed: 2, released: 1, bypassed: 0 });
    expect(await takeHandoff(redis, gateQueue, run.runId)).toBeNull();
  });

  it('a stale handoff (an approval stored after it) opens on what PostgreSQL holds, after reading it', async () => {
    const run = await approvedRun();
    await storeDecision(env.db.pool, await arrivedApproval(env, run, 'SG_1', bob));
    await leave(run.runId, run.handoff);
    const { deps, statements } = worker();
    expect(await wake(deps, run.runId)).toMatchObject({ released: 'by valid approvals' });
    expect(statements.length).toBeGreaterThan(1);
    // All three were unconsumed when the gate read PostgreSQL itself.
    expect(await outcome(run.runId)).toEqual({ status: 'running', consumed: 3, released: 1, bypassed: 0 });
  });

  it('a handoff that makes an invalid stored grant look valid opens nothing: the run fails closed as after a promote by hand', async () => {
    await env.db.pool.query(`SELECT cutter_governance.disarm_execution('test')`);
    const run = await insertPausedRun(env.db.pool);
    await storeDecision(env.db.pool, await arrivedApproval(env, run, 'SG_1', alice));
    // An EXEC row written past the endpoint: bob's grant, signed by alice.
    const grant = approvalFor(run, 'EXEC', bob);
    const nonce = /nonce: (\S+)/.exec(grant.document)?.[1];
    await env.db.pool.query(
      `INSERT INTO cutter_governance.review_decision (run_id, gate, key_id, key_name, document, signature, nonce, plan_sha256, signed_utc, expires_utc)
       VALUES ($1, 'EXEC', $2, 'bob', $3, $4, $5, $6, now(), now() + interval '1 hour')`,
      [run.runId, bob.keyId, grant.document, envelopeOf(grant.document, alice, bob.keyId).signature, nonce, run.planSha256],
    );
    const { rows } = await env.db.pool.query<{ h: string }>('SELECT cutter_governance.gate_handoff($1)::text AS h', [run.runId]);
    // The handoff says bob's own signature is stored there.
    const forged = edited(rows[0]?.h ?? '', (reads) => {
      const exec = reads.unconsumed.find((d) => d['gate'] === 'EXEC') ?? {};
      exec['signature'] = grant.signature;
    });
    await leave(run.runId, forged);
    const { deps } = worker();
    await expect(wake(deps, run.runId)).rejects.toThrow(/GATE_BYPASSED/);
    expect(await outcome(run.runId)).toEqual({ status: 'failed', consumed: 0, released: 0, bypassed: 1 });
  });

  it('a handoff whose document was changed is not judged valid: the gate reads PostgreSQL and opens on the rows there', async () => {
    const run = await approvedRun();
    await leave(run.runId, edited(run.handoff, (reads) => {
      const first = reads.unconsumed[0] ?? {};
      first['document'] = String(first['document']).replace('max_units', 'max_unitz');
    }));
    const { deps, statements } = worker();
    expect(await wake(deps, run.runId)).toMatchObject({ released: 'by valid approvals' });
    expect(statements.length).toBeGreaterThan(1);
    expect(await outcome(run.runId)).toEqual({ status: 'running', consumed: 2, released: 1, bypassed: 0 });
  });

  it('ignores a handoff that is not one (not JSON, another run, no reads)', async () => {
    const run = await approvedRun();
    for (const junk of ['{not json', JSON.stringify({ run: { run_id: 'run-someone-else' }, reads: {} }), JSON.stringify({ run: { run_id: run.runId } })]) {
      await leave(run.runId, junk);
      expect(await takeHandoff(redis, gateQueue, run.runId)).toBeNull();
    }
    const { deps } = worker();
    expect(await wake(deps, run.runId)).toMatchObject({ released: 'by valid approvals' });
    expect(await outcome(run.runId)).toEqual({ status: 'running', consumed: 2, released: 1, bypassed: 0 });
  });
});
