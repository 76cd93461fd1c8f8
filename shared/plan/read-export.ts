import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { CutterError } from '../errors.js';
import { KEY_PATTERN } from '../snapshot/record.js';
import { canonicalFields, type PlanExportHeader, type PlanExportItem } from './export.js';
import { OPS_OF_FILTER, PLAN_OP_FILTERS } from './plan-items.js';
import { canonicalHeader, canonicalLine, PLAN_CANONICAL_VERSION } from './hash.js';

/**
 * Reading a plan export offline (`cutter plan hash`, `cutter approval sign
 * --plan-export`): no database, no network. One pass, one line in memory at
 * a time: each item must come after the one before in byte order of key, so
 * the canonical text (shared/plan/hash.ts) is hashed as it is read, never
 * sorted. Anything malformed, a repeated key or a key out of order is
 * refused with its line number.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const state = z.enum(['draft', 'enacted', 'retired']);
const version = z.number().int().min(1);

const headerSchema = z.strictObject({
  cutter_plan: z.literal(PLAN_CANONICAL_VERSION),
  run_id: z.string().min(1),
  target: z.string().min(1),
  corpus: z.string().min(1).regex(/^[^\t\n]+$/),
  plan_sha256: sha256,
  unit_count: z.number().int().min(0),
});

const itemSchema = z.strictObject({
  key: z.string().regex(KEY_PATTERN),
  op: z.enum(['create', 'revise', 'transition', 'revise+transition']),
  transition: z.enum(['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired']).nullable(),
  from_state: state.nullable(),
  to_state: state,
  from_version: version.nullable(),
  to_version: version,
  body_sha256_before: sha256.nullable(),
  body_sha256_after: sha256,
});

/** How many keys of each op an export reading keeps (for a signer's preview). */
export const FIRST_KEYS = 5;

/** What one pass over an export found. */
export interface ExportReading {
  header: PlanExportHeader;
  /** plan_sha256 recomputed from the items. */
  planSha256: string;
  items: number;
  byOp: Record<string, number>;
  byTransition: Record<string, number>;
  /** The first keys each op filter selects (as `plan show --op` and the plan API select them), in byte order. */
  firstKeys: Record<string, string[]>;
}

function refuse(file: string, line: number, what: string): CutterError {
  return new CutterError('PLAN_EXPORT_INVALID', `${file} line ${line}: ${what}`, { kind: 'bad_input' });
}

function parseLine<T>(schema: z.ZodType<T>, text: string, file: string, line: number, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw refuse(file, line, `not JSON (expected ${what})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refuse(file, line, `not ${what}: ${issue ? `${issue.path.join('.') || 'line'}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}

const bump = (o: Record<string, number>, k: string) => {
  o[k] = (o[k] ?? 0) + 1;
};

/** Reads and hashes an export; refuses a malformed one. Says nothing yet about whether the hash is the header's. */
export async function readPlanExport(file: string): Promise<ExportReading> {
  const input = createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', (err) => reject(new CutterError('FILE_UNREADABLE', `cannot read ${file}: ${err.message}`, { kind: 'bad_input' })));
  });
  await opened;
  const hash = createHash('sha256');
  let header: PlanExportHeader | undefined;
  let previous: string | undefined;
  let lineNo = 0;
  const reading = { items: 0, byOp: {} as Record<string, number>, byTransition: {} as Record<string, number>, firstKeys: {} as Record<string, string[]> };
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    lineNo += 1;
    if (!header) {
      header = parseLine(headerSchema, text, file, lineNo, `a plan export header ({"cutter_plan":"${PLAN_CANONICAL_VERSION}",…})`);
      hash.update(canonicalHeader(header.corpus));
      continue;
    }
    const item: PlanExportItem = parseLine(itemSchema, text, file, lineNo, 'a plan item');
    // Keys are ASCII (the key pattern), so string order is byte order.
    if (previous !== undefined && item.key <= previous) {
      throw refuse(file, lineNo, item.key === previous ? `key ${item.key} appears twice` : `key ${item.key} comes after ${previous}: items must be in byte order of key`);
    }
    previous = item.key;
    hash.update(canonicalLine(canonicalFields(item)));
    reading.items += 1;
    bump(reading.byOp, item.op);
    // Counted as cutplan counts them (shared/plan/build.ts): a body change is the kind `revise`.
    if (item.transition) bump(reading.byTransition, item.transition);
    if (item.op === 'revise' || item.op === 'revise+transition') bump(reading.byTransition, 'revise');
    for (const filter of PLAN_OP_FILTERS) {
      if (!OPS_OF_FILTER[filter].includes(item.op)) continue;
      const first = (reading.firstKeys[filter] ??= []);
      if (first.length < FIRST_KEYS) first.push(item.key);
    }
  }
  if (!header) throw refuse(file, 1, 'the file is empty: expected a plan export header');
  return { header, planSha256: hash.digest('hex'), ...reading };
}

/**
 * Reads an export and refuses it unless its items hash to the plan_sha256
 * and count to the unit_count its header claims (PLAN_EXPORT_MISMATCH).
 */
export async function readVerifiedPlanExport(file: string): Promise<ExportReading> {
  const r = await readPlanExport(file);
  checkExportClaims(r, file);
  return r;
}

/** Refuses a reading whose items do not hash to, or count to, what its header claims. */
export function checkExportClaims(r: ExportReading, file: string): void {
  if (r.planSha256 !== r.header.plan_sha256 || r.items !== r.header.unit_count) {
    throw new CutterError(
      'PLAN_EXPORT_MISMATCH',
      `${file}: its ${r.items} items hash to ${r.planSha256}, but its header claims ${r.header.unit_count} items hashing to ${r.header.plan_sha256}: ` +
        'this is not the plan it names (changed, cut short or filtered)',
      { kind: 'refused' },
    );
  }
}
