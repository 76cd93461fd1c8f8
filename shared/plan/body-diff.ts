import { createTwoFilesPatch } from 'diff';
import type { PlanItemWithBodies } from './plan-items.js';

/**
 * A unit's body before and after the plan as a unified diff (the `diff`
 * library, jsdiff). Empty when the body does not change (a transition
 * alone). A diff the library gives up on (bodies are up to 1 MiB) says so
 * rather than holding a review up: the body hashes still name both sides.
 */

/** Past this the diff is abandoned (milliseconds of jsdiff's search). */
const DIFF_TIMEOUT_MS = 2000;

/** The unified diff of an item's body, '' when unchanged. */
export function bodyDiff(item: PlanItemWithBodies): string {
  // The version a body is read from can only be missing from a damaged corpus: say so rather than diff against nothing.
  if (item.body_after === null || (item.body_before === null && item.from_version !== null)) {
    return `(a body is not in the corpus: unit_version ${item.from_version ?? '-'} of ${item.key} is missing; sha256 ${item.body_sha256_before ?? '-'} -> ${item.body_sha256_after})\n`;
  }
  const before = item.body_before ?? '';
  if (item.body_before !== null && before === item.body_after) return '';
  const from = item.from_version === null ? '/dev/null' : `a/${item.key}@v${item.from_version}`;
  const patch = createTwoFilesPatch(from, `b/${item.key}@v${item.to_version}`, before, item.body_after, item.body_sha256_before ?? 'new unit', item.body_sha256_after, {
    context: 3,
    timeout: DIFF_TIMEOUT_MS,
  });
  // jsdiff opens a two-file patch with a row of '=' (a separator for several files): one file needs none.
  if (patch !== undefined) return patch.replace(/^=+\n/, '');
  return `(bodies too different to diff within ${DIFF_TIMEOUT_MS} ms: sha256 ${item.body_sha256_before ?? '-'} -> ${item.body_sha256_after})\n`;
}
