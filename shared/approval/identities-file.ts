import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CutterError } from '../errors.js';
import { normaliseIdentity } from './identity.js';

/**
 * identities.json in a SOVEREIGN_KEYS directory (DESIGN §3): which person
 * (database login or operator name) each key belongs to, when that is not
 * its name. One JSON object, key name → identity or list of identities:
 *
 *   {"sovereign-7": "jdoe", "ops-key": ["ops", "ops_admin"]}
 *
 * A key without an entry is its name alone. A bad file stops whoever loads
 * the keys (SOVEREIGN_IDENTITIES_INVALID): guessing would mean a key whose
 * owner we failed to read could approve that owner's own run.
 */

export const IDENTITIES_FILE = 'identities.json';

const MAX_IDENTITY_LENGTH = 200;

/** Each key name's mapped identities (as written) from DIR/identities.json; empty without the file. */
export function readIdentityMap(dir: string, keyNames: ReadonlySet<string>): Map<string, string[]> {
  const file = join(dir, IDENTITIES_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw invalid(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseIdentityMap(file, text, keyNames);
}

/** Parses the text of an identities file; every entry must name a loaded key. */
export function parseIdentityMap(file: string, text: string, keyNames: ReadonlySet<string>): Map<string, string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(`${file} is not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalid(`${file} must be one JSON object of key name → identity (a string, or a list of strings)`);
  }
  const map = new Map<string, string[]>();
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    // A typo would leave the real key unmapped, free to approve its owner's runs.
    if (!keyNames.has(name)) {
      throw invalid(`${file} maps "${name}", which is no key in this directory (keys: ${[...keyNames].sort().join(', ')})`);
    }
    const list: unknown[] = Array.isArray(value) ? (value as unknown[]) : [value];
    if (list.length === 0) throw invalid(`${file}: "${name}" maps to an empty list; name at least one identity or remove the entry`);
    map.set(
      name,
      list.map((identity) => {
        if (typeof identity !== 'string') throw invalid(`${file}: "${name}" maps to ${JSON.stringify(identity)}, not a string`);
        const normal = normaliseIdentity(identity);
        if (normal === '' || normal.length > MAX_IDENTITY_LENGTH || /\p{Cc}/u.test(normal)) {
          throw invalid(`${file}: "${name}" maps to ${JSON.stringify(identity)}; an identity is 1-${MAX_IDENTITY_LENGTH} characters without control characters`);
        }
        return identity;
      }),
    );
  }
  return map;
}

function invalid(message: string): CutterError {
  return new CutterError('SOVEREIGN_IDENTITIES_INVALID', message, { kind: 'bad_input' });
}
