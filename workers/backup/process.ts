import { createBackup } from '../../shared/backup/create.js';
import { backupSpecFromConfig } from '../../shared/backup/spec.js';
import { verifyBackup } from '../../shared/backup/verify.js';
import { CutterError } from '../../shared/errors.js';
import { reachMoment } from '../../shared/jobs/moments.js';
import type { PhaseWorker } from '../context.js';

const PROGRESS_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * The backup execute would restore from, taken right before it (after the
 * gate, so it is the state execute changes), and checked before execute runs.
 */
export const backupWorker: PhaseWorker<'backup'> = {
  process: async ({ run, progress }, deps) => {
    const spec = backupSpecFromConfig(deps.cfg);
    let reported = 0;
    let pending: Promise<void> = Promise.resolve();
    const result = await createBackup(spec, {
      runId: run.run_id,
      onProgress: (bytes) => {
        if (bytes - reported < PROGRESS_EVERY_BYTES) return;
        reported = bytes;
        pending = pending.then(() => progress({ bytes })).catch(() => undefined);
      },
    });
    await pending;
    await reachMoment('backup.middle', run.run_id); // written, not yet verified
    const verified = await verifyBackup(result.file, { gnupgHome: spec.gnupgHome });
    if (!verified.ok) {
      const failed = verified.checks.filter((c) => !c.ok && !c.skipped).map((c) => `${c.code ?? c.name}: ${c.message}`);
      throw new CutterError('BACKUP_NOT_VERIFIED', `backup ${result.file} failed verification: ${failed.join('; ')}`);
    }
    await progress({ bytes: result.manifest.bytes });
    return {
      file: result.file,
      manifest_file: result.manifestFile,
      bytes: result.manifest.bytes,
      sha256: result.manifest.sha256,
      recipient_fpr: result.manifest.recipient_fpr,
      verified: true,
    };
  },
};
