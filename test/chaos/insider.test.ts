import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadTrustedKeys } from '../../shared/approval/keys.js';
import { submitApproval } from '../../shared/approval/submit.js';
import { errorCode } from '../../shared/errors.js';
import { jobId } from '../../shared/jobs/catalog.js';
import { trustLocalSovereign } from '../support/applied-run.js';
import { fingerprintCorpusTables } from '../support/corpus-tables.js';
import { insertRunRow, insertTargetRow, ndjson, recordBackupTaken, seedUnits } from '../support/plan-fixtures.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, runToSign, waitForGate, writeTrustedKeys, makeKey } from '../support/sovereign.js';
import { recordOutcome, recordRunTrials, runEffect, trials, violation } from './support/outcomes.js';
import { buildPlan } from '../../shared/plan/build.js';
import { claimPhase } from '../../shared/runs/store.js';
import { stageSnapshot } from '../../shared/snapshot/stage.js';
import { requireTarget } from '../../shared/targets/registry.js';
import { writeFileSync } from 'node:fs';
import { openPhaseQueues } from '../../shared/jobs/queues.js';

/**
 * The insider of issue "The database holds the line": someone with the exec
 * role's rights, or write access to Redis, or an operator who controls their
 * own CUTTER_OPERATOR. Each class tries one kind of step around a guarantee,
 * many ways; what PostgreSQL or the phase code let through is counted as a
 * forgery (a write that landed, an approval accepted) or a double/partial
 * application.
 */

const GROUP = 'insider';

/** Runs sql as the exec role and commits; true when PostgreSQL let it through. */
async function landsAsExec(env: RunEnv, sql: string, params: unknown[]): Promise<boolean> {
  const client = await env.db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL ROLE ${env.cfg.CUTTER_EXEC_ROLE}`);
    await client.query(sql, params);
    await client.query('COMMIT');
    return true;
  } catch {
    await client.query('ROLLBACK');
    return false;
  } finally {
    client.release();
  }
}

/** A live run of a corpus of its own, planned, backed up and claimed at execute: what the exec role would be asked to apply. */
async function runAtExecute(env: RunEnv, n: number): Promise<string> {
  const corpus = `INS${n}`;
  await seedUnits(env.db.pool, corpus, [{ key: `${corpus}/a`, state: 'draft', body: 'a' }]);
  await insertTargetRow(env.db.pool, { name: `ins${n}`, corpus });
  const runId = `run-insider-${String(n).padStart(4, '0')}`;
  await insertRunRow(env.db.pool, { runId, target: `ins${n}`, corpus, mode: 'live' });
  const path = join(env.dir, `${runId}.ndjson`);
  writeFileSync(path, ndjson([{ key: `${corpus}/a`, state: 'enacted', body: 'a' }]));
  await stageSnapshot(env.db.pool, { runId, corpus, path });
  const client = await env.db.pool.connect();
  try {
    await buildPlan(client, { runId, target: await requireTarget(env.db.pool, `ins${n}`) });
  } finally {
    client.release();
  }
  await recordBackupTaken(env.db.pool, runId);
  await claimPhase(env.db.pool, runId, 'execute');
  return runId;
}

describe('an insider with the exec role’s rights', () => {
  it('writes nothing PostgreSQL should refuse: the corpus with the switch off or on for another run, the audit chain, the ledger, change sets, the switch', async () => {
    const env = await createRunEnv('insexec');
    const rounds = trials(1, 5);
    let tries = 0;
    let landed = 0;
    try {
      for (let i = 0; i < rounds; i += 1) {
        const mine = await runAtExecute(env, i * 2 + 1);
        const other = await runAtExecute(env, i * 2 + 2);
        const before = await fingerprintCorpusTables(env.db.pool);
        for (const on of [null, other]) {
          await env.db.pool.query(
            on
              ? `UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour', changed_by = 'test'`
              : `UPDATE cutter_governance.execution_switch SET enabled = false, run_id = NULL, expires_at = NULL, changed_by = 'test' WHERE $1::text IS NULL`,
            [on],
          );
          const attempts: [string, unknown[]][] = [
            [`UPDATE public.information_unit SET state = 'enacted' WHERE corpus = 'ICX-WORK'`, []],
            [`INSERT INTO public.information_unit (corpus, key, state, current_version) VALUES ('ICX-CONST', 'ICX-CONST/9${i}', 'enacted', 1)`, []],
            [`INSERT INTO public.iu_lifecycle_log (unit_id, from_state, to_state, version, run_id, actor) SELECT id, 'draft', 'enacted', 1, $1, 'x' FROM public.information_unit LIMIT 1`, [other]],
            [`INSERT INTO cutter_governance.audit_event (seq, at, actor, kind, run_id, detail, prev_hash, hash) VALUES (0, now(), 'x', 'gate.released', $1, '{}', repeat('0', 64), repeat('0', 64))`, [other]],
            [`INSERT INTO cutter_governance.execution_ledger (run_id, plan_sha256, unit_count) VALUES ($1, repeat('a', 64), 1)`, [mine]],
            [`UPDATE cutter_governance.cut_change_set SET unit_count = 0 WHERE run_id = $1`, [other]],
            [`UPDATE cutter_governance.execution_switch SET enabled = true, run_id = $1, expires_at = now() + interval '1 hour'`, [mine]],
            [`SELECT cutter_governance.apply_plan($1, 'insider')`, [mine]],
          ];
          for (const [sql, params] of attempts) {
            tries += 1;
            if (await landsAsExec(env, sql, params)) landed += 1;
          }
        }
        expect(await fingerprintCorpusTables(env.db.pool)).toEqual(before);
      }
    } finally {
      await env.close();
    }
    recordOutcome({
      group: GROUP,
      fault: 'exec role: corpus writes with the switch off and on for another run, audit/ledger/change-set/switch writes, apply_plan of a run whose switch is not on',
      tries,
      runsEnded: null,
      doubleApplications: 0,
      partialApplications: 0,
      lostRuns: 0,
      forgeriesAccepted: landed,
      notes: `${tries - landed} of ${tries} refused by PostgreSQL; the corpus unchanged after each round`,
    });
    expect(landed).toBe(0);
  }, 120_000);
});

describe('an insider with Redis write access', () => {
  it('cannot skip a live run’s backup by swapping its job’s data to another run', async () => {
    const tries = trials(1, 3);
    const results: { violation: string | null; code: string | null; anomaly: boolean }[] = [];
    for (let i = 0; i < tries; i += 1) {
      const env = await createRunEnv(`insswap${i}`);
      try {
        const sovereign = trustLocalSovereign(env);
        await env.startFleet();
        const ended = await env.enqueue('dry');
        await env.waitForEnd(ended);
        const before = await env.corpus();
        const runId = await env.enqueue('live');
        await waitForGate(env, runId);
        const backup = new Queue('backup', { connection: env.redis, prefix: env.cfg.CUTTER_QUEUE_PREFIX });
        try {
          await (await Job.fromId(backup, jobId(runId, 'backup')))?.updateData({ runId: ended });
        } finally {
          await backup.close();
        }
        await sovereign.approve({ cfg: env.cfg, pool: env.db.pool, redis: env.redis }, runId);
        const view = await env.waitForEnd(runId);
        const effect = await runEffect(env.db.pool, runId, before);
        const anomaly = await env.db.pool.query(`SELECT 1 FROM cutter_governance.audit_event WHERE kind = 'phase.anomaly'`);
        results.push({ violation: violation(effect, 'live'), code: view.error?.code ?? null, anomaly: Boolean(anomaly.rowCount) });
      } finally {
        await env.close();
      }
    }
    recordRunTrials({
      group: GROUP,
      fault: "Redis: a live run's backup job data swapped to another, ended run",
      tries,
      ended: results.length,
      notes: `every run failed closed (${[...new Set(results.map((r) => r.code))].join(', ')}), nothing applied, the anomaly audited`,
    });
    expect(results).toEqual(results.map(() => ({ violation: null, code: 'PHASE_ANOMALY', anomaly: true })));
  }, 240_000);
});

describe('an operator with a sovereign key named like their own login', () => {
  it('cannot approve their own run with a key named, or mapped, like their login in any spelling', async () => {
    const env = await createRunEnv('insself');
    const spellings = ['postgres', 'POSTGRES', ' Postgres ', 'ＰＯＳＴＧＲＥＳ'];
    let tries = 0;
    let accepted = 0;
    try {
      const runId = await env.enqueue('live');
      await env.startFleet();
      await waitForGate(env, runId);
      const run = await runToSign(env.db.pool, runId);
      for (const [i, name] of spellings.entries()) {
        // The run was enqueued through the tests' superuser connection: its recorded login is postgres.
        const key = makeKey(name.trim() === name ? name : `own-${i}`);
        const dir = join(env.dir, `self-${i}`);
        const keysDir = writeTrustedKeys(dir, [key]);
        if (key.name !== name) writeFileSync(join(keysDir, 'identities.json'), JSON.stringify({ [key.name]: name }));
        const deps = {
          pool: env.db.pool,
          keys: await loadTrustedKeys(keysDir),
          quorum: 1,
          queues: openPhaseQueues(env.redis, env.cfg.CUTTER_QUEUE_PREFIX),
          log: pino({ level: 'silent' }),
          releaseWaitMs: 0,
        };
        for (const gate of ['SG_1', 'EXEC'] as const) {
          tries += 1;
          const outcome = await submitApproval(deps, runId, approvalFor(run, gate, key)).then(
            () => 'accepted',
            (err: unknown) => errorCode(err),
          );
          if (outcome === 'accepted') accepted += 1;
          else expect(outcome).toBe('APPROVAL_SELF_APPROVAL');
        }
        await Promise.all(Object.values(deps.queues).map((q) => q.close()));
      }
    } finally {
      await env.close();
    }
    recordOutcome({
      group: GROUP,
      fault: 'self-approval: a key named (or mapped) like the enqueuing login in other spellings',
      tries,
      runsEnded: null,
      doubleApplications: 0,
      partialApplications: 0,
      lostRuns: 0,
      forgeriesAccepted: accepted,
      notes: `${tries - accepted} of ${tries} refused APPROVAL_SELF_APPROVAL`,
    });
    expect(accepted).toBe(0);
  }, 120_000);
});

describe('live runs on distinct corpora', () => {
  it('overlap, approved in an interleaved order, and each is applied exactly once and verified', async () => {
    const count = trials(2, 4);
    const env = await createRunEnv('insoverlap');
    const outcomes: (string | null)[] = [];
    try {
      const sovereign = trustLocalSovereign(env);
      await env.startFleet();
      const runs: { runId: string; before: Awaited<ReturnType<RunEnv['corpus']>> }[] = [];
      for (let i = 0; i < count; i += 1) {
        const corpus = `LAP-${i}`;
        await seedUnits(env.db.pool, corpus, Array.from({ length: 5 }, (_, k) => ({ key: `${corpus}/${k}`, state: 'draft' as const, body: `b${k}` })));
        await insertTargetRow(env.db.pool, { name: corpus.toLowerCase(), corpus });
        const snapshot = join(env.dir, `${corpus}.ndjson`);
        writeFileSync(snapshot, ndjson([0, 1, 2].map((k) => ({ key: `${corpus}/${k}`, state: 'enacted', body: `b${k}` }))));
        const before = await env.corpus();
        const runId = await env.enqueue('live', { target: corpus.toLowerCase(), snapshot });
        await waitForGate(env, runId);
        runs.push({ runId, before });
      }
      // Interleaved: last first, then the rest.
      for (const r of [...runs.slice(-1), ...runs.slice(0, -1)]) {
        await waitFor('the kill switch to be free', async () => {
          const { rows } = await env.db.pool.query<{ on: boolean }>('SELECT cutter_governance.execution_enabled() AS on');
          return rows[0]?.on ? undefined : true;
        }, { deadlineMs: 60_000 });
        await sovereign.approve({ cfg: env.cfg, pool: env.db.pool, redis: env.redis }, r.runId);
        await env.waitForEnd(r.runId);
      }
      for (const r of runs) {
        const view = await env.waitForEnd(r.runId);
        const { rows } = await env.db.pool.query<{ log: number; ledger: number }>(
          `SELECT (SELECT count(*)::int FROM public.iu_lifecycle_log WHERE run_id = $1) AS log,
                  (SELECT count(*)::int FROM cutter_governance.execution_ledger WHERE run_id = $1) AS ledger`,
          [r.runId],
        );
        const ok = view.status === 'succeeded' && view.verdict === 'PASS' && rows[0]?.log === 3 && rows[0].ledger === 1;
        outcomes.push(ok ? null : `${view.status} ${view.error?.code ?? ''} log ${rows[0]?.log ?? '?'} ledger ${rows[0]?.ledger ?? '?'}`);
      }
    } finally {
      await env.close();
    }
    recordRunTrials({
      group: GROUP,
      fault: `${count} overlapping live runs on distinct corpora, approved out of order`,
      tries: count,
      ended: count,
      doubles: 0,
      notes: `${outcomes.filter((o) => o === null).length} of ${count} succeeded PASS, each applied once`,
    });
    expect(outcomes).toEqual(outcomes.map(() => null));
  }, 300_000);
});
