import { spawn } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBoardServer, type BoardServer } from '../../board/server.js';
import { CLI_PATH, runCli } from '../support/cli.js';
import { waitFor } from '../support/poll.js';
import { createRunEnv, type RunEnv } from '../support/run-env.js';
import { enactingSnapshot, waitForGate } from '../support/sovereign.js';

/** The sovereign's commands as a user runs them: keygen, sign, submit, against a running board. */

let env: RunEnv;
let board: BoardServer | undefined;
beforeAll(async () => {
  env = await createRunEnv('apprcli');
  await env.startFleet();
}, 120_000);
afterAll(async () => {
  await board?.close();
  await env.close();
});

const ED25519_SPKI_HEADER = Buffer.from('302a300506032b6570032100', 'hex');
function keyIdOfPem(pem: string): string {
  const raw = Buffer.from(createPublicKey(pem).export({ format: 'jwk' }).x ?? '', 'base64url');
  return createHash('sha256').update(Buffer.concat([ED25519_SPKI_HEADER, raw])).digest('hex').slice(0, 16);
}

describe('cutter approval keygen, sign and submit', () => {
  it('generate a key, sign exactly what is shown, and release a live run through the endpoint', async () => {
    const keyDir = join(env.dir, 'sovereign-cli');
    const keygen = await runCli(['approval', 'keygen', '--out', keyDir, '--name', 'sovereign-cli'], env.env);
    expect(keygen.code, keygen.stderr).toBe(0);
    const privatePath = join(keyDir, 'private', 'sovereign-cli.pem');
    const publicPath = join(keyDir, 'public', 'sovereign-cli.pem');
    expect(statSync(privatePath).mode & 0o777).toBe(0o600);
    const publicPem = readFileSync(publicPath, 'utf8');
    const keyId = keyIdOfPem(publicPem);
    expect(keygen.stdout).toContain(`key_id ${keyId}`);
    const twice = await runCli(['approval', 'keygen', '--out', keyDir, '--name', 'sovereign-cli'], env.env);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/keys are never overwritten.*\[KEY_EXISTS\]/);

    // The board trusts the new public key.
    copyFileSync(publicPath, join(env.sovereign.dir, 'sovereign-cli.pem'));
    board = await startBoardServer({ cfg: env.cfg, log: pino({ level: 'silent' }), port: 0, host: '127.0.0.1' });
    const cliEnv = { ...env.env, CUTTER_API_URL: board.url };

    const runId = await env.enqueue('live', { snapshot: enactingSnapshot(env.dir, 30, 33), approvalWindowS: 3600 });
    const run = await waitForGate(env, runId);

    const sg1File = join(env.dir, 'sg1.json');
    const sign = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', runId, '--key', privatePath, '--ttl', '2h', '--out', sg1File], cliEnv);
    expect(sign.code, sign.stderr).toBe(0);
    const shown = /-----\n([\s\S]*?)-----\n/.exec(sign.stdout)?.[1];
    const envelope = JSON.parse(readFileSync(sg1File, 'utf8')) as { document: string; signature: string; key_id: string };
    expect(envelope.document).toBe(shown);
    expect(envelope.key_id).toBe(keyId);
    expect(verify(null, Buffer.from(envelope.document, 'utf8'), createPublicKey(publicPem), Buffer.from(envelope.signature, 'base64'))).toBe(true);
    expect(envelope.document).toMatch(new RegExp(`^cutter-approval: v1\ngate: SG_1\nrun_id: ${runId}\ntarget: icx-work\nplan_sha256: ${run.planSha256}\n`));
    expect(envelope.document).toContain('allowance: max_units=4; transitions=draft->enacted\n');
    const signed = /signed_utc: (\S+)\nexpires_utc: (\S+)\n/.exec(envelope.document);
    expect(new Date(signed?.[2] ?? '').getTime() - new Date(signed?.[1] ?? '').getTime()).toBe(2 * 3600_000);

    const submit = await runCli(['approval', 'submit', sg1File], cliEnv);
    expect(submit.code, submit.stderr).toBe(0);
    expect(submit.stdout).toMatch(/accepted: SG_1/);
    expect(submit.stdout).toMatch(/waiting for EXEC/);

    const replay = await runCli(['approval', 'submit', sg1File], cliEnv);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toMatch(/\[APPROVAL_NONCE_REPLAYED\]/);

    const tamperedFile = join(env.dir, 'tampered.json');
    writeFileSync(tamperedFile, JSON.stringify({ ...envelope, document: envelope.document.replace('max_units=4', 'max_units=9') }));
    const tampered = await runCli(['approval', 'submit', tamperedFile], cliEnv);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/\[APPROVAL_SIGNATURE_INVALID\]/);

    const execFile = join(env.dir, 'exec.json');
    const signExec = await runCli(['approval', 'sign', '--gate', 'EXEC', '--run', runId, '--key', privatePath, '--out', execFile], cliEnv);
    expect(signExec.code, signExec.stderr).toBe(0);
    expect(signExec.stdout).toContain('allowance: execution_enabled=true\n');
    const submitExec = await runCli(['approval', 'submit', execFile, '--json'], cliEnv);
    expect(submitExec.code, submitExec.stderr).toBe(0);
    expect(JSON.parse(submitExec.stdout)).toMatchObject({ accepted: true, gate: 'EXEC', released: true, waiting_for: [] });

    const view = await env.waitForEnd(runId, 90_000);
    expect(view.status, JSON.stringify(view.error)).toBe('succeeded');
    expect(view.verdict).toBe('PASS');

    const ended = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', runId, '--key', privatePath], cliEnv);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toMatch(/succeeded, not awaiting_approval/);
    const unknown = await runCli(['approval', 'sign', '--gate', 'SG_1', '--run', 'run-20000101-000000-000000', '--key', privatePath], cliEnv);
    expect(unknown.code).toBe(2);
    const badGate = await runCli(['approval', 'sign', '--gate', 'SG_9', '--run', runId, '--key', privatePath], cliEnv);
    expect(badGate.code).toBe(2);
  }, 180_000);

  it('cutter board serves the API until SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI_PATH, 'board', '--port', '0', '--host', '127.0.0.1'], {
      env: { PATH: process.env['PATH'] ?? '', ...env.env, BOARD_USER: 'admin', BOARD_PASSWORD: 'test-only-password' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        const m = /board listening on (\S+)/.exec(stdout);
        if (m?.[1]) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`cutter board exited early (${String(code)})`)));
    });
    const res = await fetch(`${url}/runs/run-20000101-000000-000000`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'RUN_UNKNOWN', message: 'no run run-20000101-000000-000000' } });
    expect((await fetch(`${url}/livez`)).status).toBe(200);

    // An approval POST still arriving when SIGTERM comes gets its answer: the board stops accepting, not answering.
    // Expect: 100-continue makes the board say when it has the request (its headers parsed); the body follows only after SIGTERM.
    const body = JSON.stringify({ document: 'cutter-approval: v1\n', signature: 'AAAA', key_id: '0123456789abcdef' });
    const req = request(`${url}/runs/run-20000101-000000-000000/approvals`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    });
    const inFlight = new Promise<void>((resolve) => req.once('continue', () => resolve()));
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
    });
    req.flushHeaders();
    await inFlight;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    // Shutting down: a new connection is no longer answered.
    await waitFor('the board to stop accepting connections', async () => (await fetch(`${url}/livez`).then(() => false, () => true)) || undefined, { deadlineMs: 10_000, stepMs: 20 });
    req.end(body);
    const answered = await answer;
    expect(answered.status, answered.text).toBeGreaterThanOrEqual(400);
    expect(JSON.parse(answered.text)).toMatchObject({ error: { code: expect.any(String) as string } });
    expect(await exited).toBe(0);
  }, 60_000);
});
