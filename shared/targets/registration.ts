import { z } from 'zod';
import { TRANSITION_KINDS } from '../units/lifecycle.js';

/**
 * C1: a target registration file (DESIGN §2) is complete and well-formed.
 * Every field of the DESIGN example is required; `allow_empty_corpus` is the
 * one optional field (default false). Unknown fields are refused, so a typo
 * such as "protectd" can never silently leave a corpus unprotected.
 */

const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CORPUS_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const INT4_MAX = 2_147_483_647;

export const registrationSchema = z.strictObject({
  name: z.string({ error: 'must be a string' }).regex(TARGET_NAME, {
    error: 'must be 1-64 letters, digits, . _ - starting with a letter or digit',
  }),
  corpus: z.string({ error: 'must be a string' }).regex(CORPUS_NAME, {
    error: 'must be 1-100 letters, digits, . _ - starting with a letter or digit',
  }),
  owner: z
    .string({ error: 'must be a string' })
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(200, { error: 'must be at most 200 characters' }),
  protected: z.boolean({ error: 'must be true or false' }),
  max_units: z
    .number({ error: 'must be a whole number ≥ 1' })
    .int({ error: 'must be a whole number ≥ 1' })
    .min(1, { error: 'must be a whole number ≥ 1' })
    .max(INT4_MAX, { error: `must be at most ${INT4_MAX}` }),
  allowed_transitions: z
    .array(z.enum(TRANSITION_KINDS, { error: `each must be one of ${TRANSITION_KINDS.join(', ')}` }), {
      error: 'must be a list of transitions',
    })
    .min(1, { error: 'must list at least one transition' })
    .refine((list) => new Set(list).size === list.length, { error: 'must not repeat a transition' }),
  allow_empty_corpus: z.boolean({ error: 'must be true or false' }).default(false),
  notes: z.string({ error: 'must be a string' }).max(2000, { error: 'must be at most 2000 characters' }),
});

export type Registration = z.output<typeof registrationSchema>;

export type RegistrationParse = { ok: true; value: Registration } | { ok: false; problems: string[] };

/** Validates parsed JSON against C1; each problem names its field. */
export function parseRegistration(input: unknown): RegistrationParse {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, problems: ['must be a JSON object'] };
  }
  const result = registrationSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `unknown field "${k}"`).join('; ');
    }
    const field = issue.path.map(String).join('.');
    const top = issue.path[0];
    if (issue.path.length === 1 && typeof top === 'string' && !Object.hasOwn(input, top)) return `${field}: missing`;
    return `${field || '(file)'}: ${issue.message}`;
  });
  return { ok: false, problems };
}

/** Parses the text of a registration file (JSON) and validates it against C1. */
export function parseRegistrationText(text: string): RegistrationParse {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\ufeff/, '')); // editors on Windows add a BOM
  } catch (err) {
    return { ok: false, problems: [`not valid JSON: ${(err as Error).message}`] };
  }
  return parseRegistration(json);
}
