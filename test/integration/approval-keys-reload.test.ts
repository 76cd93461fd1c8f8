import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { insertPausedRun } from '../support/paused-run.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { approvalFor, makeKey, postApproval } from '../support/sovereign.js';

/**
 * A sovereign key copied into SOVEREIGN_KEYS while the board runs counts at
 * once, and one removed stops counting at once: no restart. A refusal never
 * shows the server's key directory to whoever posted.
 */

let env: RunEnv;
let board: BoardServer;
beforeAll(async () => {
  env = await createRunEnv('keysreload');
  board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, options: { sweepIntervalMs: 60_000 } });
}, 60_000);
afterAll(async () => {
  await board?.close();
  await env?.close();
});

describe('trusted keys while the board runs', () => {
  it('accepts an approval signed by a key added after start, and refuses it once the key is removed, naming no path', async () => {
    const run = await insertPausedRun(env.db.pool);
    const newcomer = makeKey('sovereign-new');
    const before = await postApproval(board.url, run.runId, approvalFor(run, 'SG_1', newcomer));
    expect(before.status).toBe(403);
    expect(before.json.error?.code).toBe('APPROVAL_KEY_UNKNOWN');

    const file = join(env.sovereign.dir, 'sovereign-new.pem');
    writeFileSync(file, newcomer.publicPem);
    const added = await postApproval(board.url, run.runId, approvalFor(run, 'SG_1', newcomer));
    expect(added.status, JSON.stringify(added.json)).toBe(201);
    expect(added.json).toMatchObject({ accepted: true, gate: 'SG_1' });

    rmSync(file);
    const removed = await postApproval(board.url, run.runId, approvalFor(run, 'EXEC', newcomer));
    expect(removed.status).toBe(403);
    expect(removed.json.error).toEqual({ code: 'APPROVAL_KEY_UNKNOWN', message: `key ${newcomer.keyId} is not a trusted sovereign key: it is not among the trusted sovereign public keys` });
    for (const answer of [before, removed]) expect(JSON.stringify(answer.json)).not.toContain(env.sovereign.dir);
  });
});
