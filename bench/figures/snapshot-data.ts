import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Pool } from '../../shared/db/pool.js';

/**
 * The data of the snapshot + plan benchmark, generated fresh each run: a
 * corpus of n draft units, and a snapshot of n records that keeps 98% of
 * them and adds 2% new keys. Of the kept units every 10th is enacted and
 * every 25th gets a new body, so the plan has all four ops (≈15.6% of n).
 */

export const BENCH_CORPUS = 'BENCH';

/** The key of the i-th unit of the bench corpus (1-based). */
export const benchKey = (i: number) => `${BENCH_CORPUS}/${String(i).padStart(7, '0')}`;
/** A bench unit's body at a version (seedBenchCorpus writes version 1). */
export const benchBody = (k: string, version: number) => `${k}: benchmark information unit, text of version ${version}.`;

/** n draft units at version 1, built server-side (no rows cross the network). */
export async function seedBenchCorpus(pool: Pool, n: number): Promise<void> {
  await pool.query(
    `INSERT INTO public.information_unit (corpus, key, state, current_version)
     SELECT $1, $1 || '/' || lpad(g::text, 7, '0'), 'draft', 1 FROM generate_series(1, $2::int) g`,
    [BENCH_CORPUS, n],
  );
  await pool.query(
    `INSERT INTO public.unit_version (unit_id, version, body, body_sha256)
     SELECT u.id, 1, b.body, encode(sha256(convert_to(b.body, 'UTF8')), 'hex')
       FROM public.information_unit u
      CROSS JOIN LATERAL (SELECT u.key || ': benchmark information unit, text of version 1.' AS body) b
      WHERE u.corpus = $1`,
    [BENCH_CORPUS],
  );
  await pool.query('ANALYZE public.information_unit, public.unit_version');
}

/** Writes the n-record NDJSON snapshot; returns how many plan items it should produce. */
export async function writeBenchSnapshot(path: string, n: number): Promise<number> {
  const out = createWriteStream(path);
  const kept = Math.round(n * 0.98);
  let expected = 0;
  let buf = '';
  for (let i = 1; i <= n; i += 1) {
    let line: string;
    if (i <= kept) {
      const k = benchKey(i);
      const enact = i % 10 === 0;
      const revise = i % 25 === 0;
      if (enact || revise) expected += 1;
      line = JSON.stringify({ key: k, state: enact ? 'enacted' : 'draft', body: benchBody(k, revise ? 2 : 1) });
    } else {
      const k = benchKey(n + i);
      expected += 1;
      line = JSON.stringify({ key: k, state: 'draft', body: benchBody(k, 1) });
    }
    buf += `${line}\n`;
    if (buf.length > 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  return expected;
}
