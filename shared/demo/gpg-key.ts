import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DEMO_UID = 'cutter demo backup key <demo@cutter.invalid>';

/**
 * The demo's backup key: a throwaway key pair in its own GNUPGHOME, made
 * once and reused. Real deployments bring their own key (BACKUP_GPG_FPR).
 */
export async function ensureDemoGpgKey(gnupgHome: string): Promise<string> {
  mkdirSync(gnupgHome, { recursive: true, mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: gnupgHome };
  const existing = await fingerprintOf(env);
  if (existing) return existing;
  await run('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', DEMO_UID, 'ed25519', 'sign', '1y'], { env });
  const fpr = await fingerprintOf(env);
  if (!fpr) throw new Error('gpg made no demo key');
  await run('gpg', ['--batch', '--passphrase', '', '--quick-add-key', fpr, 'cv25519', 'encr', '1y'], { env });
  return fpr;
}

async function fingerprintOf(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const { stdout } = await run('gpg', ['--batch', '--with-colons', '--list-secret-keys', DEMO_UID], { env });
    const line = stdout.split('\n').find((l) => l.startsWith('fpr:'));
    return line?.split(':')[9];
  } catch {
    return undefined;
  }
}
