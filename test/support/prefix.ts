import { randomBytes } from 'node:crypto';

/** A queue prefix of its own for one test, so tests never see each other's jobs. */
export function testQueuePrefix(label = 't'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}
