import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { config } from '../../shared/config.js';
import { createBackup } from '../../shared/backup/create.js';
import { DUMP_COMPRESS_LEVEL } from '../../shared/backup/pgdump.js';
import { backupSpecFrom } from '../../shared/backup/spec.js';
import { migrate } from '../../shared/deploy/migrate.js';
import { createPool } from '../../shared/db/pool.js';
import { timed, type Bench } from '../harness.js';
import { FLOOR_PIPELINE, SAME_SETTINGS_PIPELINE, shellPipeline } from '../support/shell-pipeline.js';
import { dropScratch, scratchUrl } from './seed.js';

/**
 * The encrypted backup of a corpus of 200,000 units (50,000 with --quick)
 * beside the bare shell pipeline an operator would type,
 * `pg_dump -Fc | gpg --encrypt -r FPR > file`, on the same database in the
 * same run. Runs alternate between the two and the medians are compared, so
 * a warm or cold cache favours neither.
 */

/** A throwaway key pair in a temporary GNUPGHOME (the bench never touches a real keyring). */
function benchKey(): { home: string; fpr: string; remove: () => void } {
  const home = mkdtempSync(join(tmpdir(), 'cutter-bench-gpg-'));
  const gpg = (args: string[]) => execFileSync('gpg', ['--batch', '--no-tty', '--homedir', home, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  gpg(['--passphrase', '', '--quick-gen-key', 'cutter bench <bench@example.invalid>', 'ed25519', 'sign', '1d']);
  const fpr = gpg(['--with-colons', '--list-keys']).split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9];
  if (!fpr) throw new Error('gpg made no key');
  gpg(['--passphrase', '', '--quick-add-key', fpr, 'cv25519', 'encr', '1d']);
  return {
    home,
    fpr,
    remove: () => {
      try {
        execFileSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
      } catch {
        // no agent was started
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Units with ~200-byte bodies, one version each, written server-side. */
async function seedUnits(url: string, units: number): Promise<void> {
  await migrate(url, { execRole: config().CUTTER_EXEC_ROLE });
  const pool = createPool(url, { max: 1 });
  try {
    await pool.query(
      `INSERT INTO public.information_unit (corpus, key, state, current_version)
       SELECT 'BENCH', 'BENCH/' || lpad(g::text, 7, '0'), 'draft', 1 FROM generate_series(1, $1::int) g`,
      [units],
    );
    await pool.query(
      `INSERT INTO public.unit_version (unit_id, version, body, body_sha256, created_by_run)
       SELECT id, 1, body, encode(sha256(convert_to(body, 'UTF8')), 'hex'), NULL
         FROM (SELECT id, format('Section %s. The council enacts rule %s concerning %s; see also %s.',
                                 id, md5(id::text), md5((id * 7)::text), md5((id * 13)::text)) AS body
                 FROM public.information_unit WHERE corpus = 'BENCH') s`,
    );
    // Hint bits and statistics settled once, so no timed run pays for them.
    await pool.query('VACUUM ANALYZE');
  } finally {
    await pool.end();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

export const backupBench: Bench = {
  name: 'backup',
  async run({ quick, log }) {
    const units = quick ? 50_000 : 200_000;
    const rounds = quick ? 3 : 5;
    const url = scratchUrl('backup');
    const key = benchKey();
    const outDir = mkdtempSync(join(tmpdir(), 'cutter-bench-backup-'));
    try {
      await dropScratch(url);
      log(`seeding ${units.toLocaleString('en')} units`);
      await seedUnits(url, units);
      const spec = backupSpecFrom({ databaseUrl: url, recipientFpr: key.fpr, outDir, gnupgHome: key.home });
      const floorFile = join(outDir, 'floor.pgdump.gpg');

      // One untimed pass of each warms the caches both will read from.
      const sameFile = join(outDir, 'same-settings.pgdump.gpg');
      await shellPipeline(FLOOR_PIPELINE, url, key.fpr, key.home, floorFile);
      await shellPipeline(SAME_SETTINGS_PIPELINE, url, key.fpr, key.home, sameFile);
      removeBackup(await createBackup(spec));

      const ours: number[] = [];
      const floor: number[] = [];
      const same: number[] = [];
      let oursBytes = 0;
      for (let round = 0; round < rounds; round += 1) {
        const runFloor = async () => {
          floor.push((await timed(() => shellPipeline(FLOOR_PIPELINE, url, key.fpr, key.home, floorFile))).seconds);
          same.push((await timed(() => shellPipeline(SAME_SETTINGS_PIPELINE, url, key.fpr, key.home, sameFile))).seconds);
        };
        const runOurs = async () => {
          const c = await timed(() => createBackup(spec));
          ours.push(c.seconds);
          oursBytes = c.result.manifest.bytes;
          removeBackup(c.result);
        };
        // Alternate which goes first, so neither always inherits the other's warm (or busy) machine.
        if (round % 2 === 0) {
          await runFloor();
          await runOurs();
        } else {
          await runOurs();
          await runFloor();
        }
        log(
          `round ${round + 1}: cutter ${(ours.at(-1) ?? 0).toFixed(2)} s, shell pipeline ${(floor.at(-1) ?? 0).toFixed(2)} s, ` +
            `same pipeline at cutter's settings ${(same.at(-1) ?? 0).toFixed(2)} s`,
        );
      }
      const floorBytes = statSync(floorFile).size;
      const sameBytes = statSync(sameFile).size;
      const value = median(ours);
      const base = median(floor);
      const sameBase = median(same);
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      return [
        {
          name: `encrypted backup (${units.toLocaleString('en')} units, median of ${rounds})`,
          value: `${value.toFixed(2)} s`,
          // The table cell needs its pipe escaped.
          floor: `${base.toFixed(2)} s (pg_dump -Fc \\| gpg --encrypt -r FPR > file)`,
          ratio: value / base,
          goal: '≤ 1.0',
          met: value / base <= 1.0,
          notes:
            `cutter's file ${mib(oursBytes)}, the shell pipeline's ${mib(floorBytes)}. cutter's time includes what the pipeline skips: ` +
            'the key and pg_dump checks, an exported snapshot, exact row counts and content hashes of every table in that snapshot, ' +
            'the sha256 of the ciphertext, fsync, the packet check and the manifest. It wins the time back by spending less CPU on ' +
            `compression, which is most of pg_dump's time: zlib level ${DUMP_COMPRESS_LEVEL} instead of pg_dump's default, and ` +
            "--compress-algo none (gpg compressing pg_dump's zlib output again costs CPU for little), and by keeping every byte " +
            'out of Node (pg_dump → gpg → file are joined by the kernel). The next row compares cutter with the pipeline at its own settings.',
        },
        {
          name: `encrypted backup vs the shell pipeline at cutter's compression settings (${units.toLocaleString('en')} units, median of ${rounds})`,
          value: `${value.toFixed(2)} s`,
          floor: `${sameBase.toFixed(2)} s (pg_dump -Fc --compress=${DUMP_COMPRESS_LEVEL} \\| gpg --compress-algo none --encrypt -r FPR > file)`,
          ratio: value / sameBase,
          goal: 'reported',
          met: null,
          notes:
            `the pipeline's file ${mib(sameBytes)}. The difference is the cost of cutter's checks and durability at equal ` +
            'compression work: the exported snapshot, the fingerprints of every table, the sha256, fsync, packet check and manifest.',
        },
      ];
    } finally {
      await dropScratch(url).catch(() => undefined);
      rmSync(outDir, { recursive: true, force: true });
      key.remove();
    }
  },
};

function removeBackup(result: { file: string; manifestFile: string }): void {
  rmSync(result.file, { force: true });
  rmSync(result.manifestFile, { force: true });
}
