import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { decryptArgs, statusLines } from './gpg.js';
import { childEnd, collectStderr, describeEnd, lastLines } from './proc.js';

/**
 * gpg --decrypt FILE piped into a consumer (pg_restore). As in the dump, the
 * plaintext goes through a kernel pipe from one child to the other and never
 * through this process or onto the disk.
 */

export type DecryptOutcome =
  | { ok: true }
  /** `part` says who failed first: gpg (wrong key, tampered or truncated data) or the consumer. */
  | { ok: false; part: 'gpg' | 'consumer' | 'gpg-missing' | 'consumer-missing'; detail: string };

export async function decryptInto(
  file: string,
  gnupgHome: string | undefined,
  consumer: {
    command: string;
    args: string[];
    env?: NodeJS.ProcessEnv;
    /** Reads the consumer's output (to its end: an unread pipe stalls the consumer); ignored when absent. */
    readOutput?: (output: Readable) => Promise<void>;
  },
): Promise<DecryptOutcome> {
  // The consumer starts first and gpg writes into its stdin: a child's stdout
  // handed on would already be read by this process, which would steal data.
  const child = spawn(consumer.command, consumer.args, {
    stdio: ['pipe', consumer.readOutput ? 'pipe' : 'ignore', 'pipe'],
    env: consumer.env ?? process.env,
  });
  // Settled at once into a value, so a reader's failure is never an unhandled rejection.
  const readFailure = (consumer.readOutput && child.stdout ? consumer.readOutput(child.stdout) : Promise.resolve()).then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  const childEnded = childEnd(child);
  const childStderr = collectStderr(child);
  try {
    await once(child, 'spawn');
  } catch (err) {
    await childEnded;
    return { ok: false, part: 'consumer-missing', detail: `${consumer.command} could not start (${(err as NodeJS.ErrnoException).code ?? ''})` };
  }
  const consumerIn = child.stdin;
  if (!consumerIn) throw new Error(`${consumer.command} was spawned without a stdin pipe`);
  const gpg = spawn('gpg', decryptArgs(gnupgHome, file), { stdio: ['ignore', consumerIn, 'pipe'] });
  const gpgEnded = childEnd(gpg);
  const gpgStderr = collectStderr(gpg);
  // Our copy of the write end must go, or the consumer would never see the end of the data.
  consumerIn.destroy();

  const [gpgEnd, childEndState, readError] = await Promise.all([gpgEnded, childEnded, readFailure]);
  if (gpgEnd.spawnError) return { ok: false, part: 'gpg-missing', detail: `gpg ${describeEnd(gpgEnd)}` };
  const gpgText = gpgStderr.toString();
  const status = statusLines(gpgText).map((s) => s.keyword);
  // gpg refusing (bad MDC, truncated packet, no secret key) is the root cause even when the consumer also choked.
  const gpgRefused = status.includes('DECRYPTION_FAILED') || status.includes('BADMDC') || status.includes('NO_SECKEY');
  const gpgOk = gpgEnd.code === 0 && gpgEnd.signal === null && status.includes('DECRYPTION_OKAY') && !gpgRefused;
  const childOk = childEndState.code === 0 && childEndState.signal === null;
  if (gpgRefused) return { ok: false, part: 'gpg', detail: `gpg ${describeEnd(gpgEnd)}: ${lastLines(gpgText)}` };
  if (!childOk) return { ok: false, part: 'consumer', detail: `${consumer.command} ${describeEnd(childEndState)}: ${lastLines(childStderr.toString())}` };
  if (!gpgOk) return { ok: false, part: 'gpg', detail: `gpg ${describeEnd(gpgEnd)}: ${lastLines(gpgText)}` };
  if (readError) return { ok: false, part: 'consumer', detail: `reading ${consumer.command}'s output failed: ${readError.message}` };
  return { ok: true };
}
