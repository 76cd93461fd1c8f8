/**
 * A loopback load generator in a process of its own, so the clients do not
 * share the measured server's event loop (as real clients would not).
 * Usage: node load.js URL COUNT CONCURRENCY EXPECTED_STATUS < body
 * Prints {"perS": n} on stdout; exits 1 on an unexpected status.
 */
import { readFileSync } from 'node:fs';

async function main(): Promise<void> {
  const [url, count, concurrency, expected] = process.argv.slice(2);
  if (!url || !count || !concurrency || !expected) throw new Error('usage: load.js URL COUNT CONCURRENCY EXPECTED_STATUS < body');
  const body = readFileSync(0, 'utf8');
  const total = Number(count);
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Number(concurrency) }, async () => {
      while (next < total) {
        next += 1;
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        if (res.status !== Number(expected)) throw new Error(`expected ${expected}, got ${res.status}`);
      }
    }),
  );
  process.stdout.write(`${JSON.stringify({ perS: total / ((performance.now() - start) / 1000) })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
