/**
 * A loopback load generator in a process of its own, so the clients do not
 * share the measured server's event loop (as real clients would not). It
 * uses node:http with a keep-alive agent: fetch costs several times more CPU
 * per request, and on two cores the generator would otherwise be what is
 * measured.
 * Usage: node load.js URL COUNT CONCURRENCY EXPECTED_STATUS < body
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

async function main(): Promise<void> {
  const [url, count, concurrency, expected] = process.argv.slice(2);
  if (!url || !count || !concurrency || !expected) throw new Error('usage: load.js URL COUNT CONCURRENCY EXPECTED_STATUS < body');
  const body = readFileSync(0, 'utf8');
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
  const total = Number(count);
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Number(concurrency) }, async () => {
      while (next < total) {
        next += 1;
        const status = await post(target, body, agent);
        if (status !== Number(expected)) throw new Error(`expected ${expected}, got ${status}`);
      }
    }),
  );
  process.stdout.write(`${JSON.stringify({ perS: total / ((performance.now() - start) / 1000) })}\n`);
  agent.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
