/**
 * A loopback load generator in a process of its own, so the clients do not
 * share the measured server's event loop (as real clients would not). It
 * uses node:http with a keep-alive agent: fetch costs several times more CPU
 * per request, and on two cores the generator would otherwise be what is
 * measured.
 * Usage: node load.js URL COUNT CONCURRENCY EXPECTED_STATUS [WARMUP] < body
 * WARMUP requests are sent first and not timed: the rate asked for is a
 * steady one, not that of a server (and a client) still compiling its hot
 * paths; both sides of a comparison get the same warm-up.
 * Prints {"perS": n} on stdout; exits 1 on an unexpected status.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

function post(url: URL, body: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** Sends `total` POSTs, `concurrency` at a time; returns the seconds they took. */
async function burst(target: URL, body: string, agent: Agent, total: number, concurrency: number, expected: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const status = await post(target, body, agent);
        if (status !== expected) throw new Error(`expected ${expected}, got ${status}`);
      }
    }),
  );
  return (performance.now() - start) / 1000;
}

async function main(): Promise<void> {
  const [url, count, concurrency, expected, warmup] = process.argv.slice(2);
  if (!url || !count || !concurrency || !expected) throw new Error('usage: load.js URL COUNT CONCURRENCY EXPECTED_STATUS [WARMUP] < body');
  const body = readFileSync(0, 'utf8');
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
  if (warmup) await burst(target, body, agent, Number(warmup), Number(concurrency), Number(expected));
  const seconds = await burst(target, body, agent, Number(count), Number(concurrency), Number(expected));
  process.stdout.write(`${JSON.stringify({ perS: Number(count) / seconds })}\n`);
  agent.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
