import { z } from 'zod';
import type { Phase } from './catalog.js';

/**
 * What each phase stores for the run and for the phases after it, one zod
 * schema each (the job catalog's half for results). The phase runner writes a
 * result only through its schema, and every reader (verify, the report, the
 * run view, readiness) parses through it: a field is named here and nowhere
 * else, and a stored result that is not what its schema says is an error,
 * not a guess.
 */

const count = z.number().int().nonnegative();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const counts = z.record(z.string(), count);

/** A table's row count and content hash (readiness; the run baselines taken before docs/proof.md's write record). */
export const corpusFingerprint = z.strictObject({ table: z.string(), rows: count, hash: z.string() });
export type CorpusFingerprint = z.infer<typeof corpusFingerprint>;

/**
 * G0: what precheck recorded before anything happened, kept in the run row's
 * baseline column. `write_mark` is the server's snapshot at that moment (also
 * kept where the application cannot write it, cutter_governance.run_write_mark):
 * every write to the run's corpus committed after it counts against the run
 * (docs/proof.md). `tables` is the full fingerprint older runs took instead.
 */
export const baseline = z.strictObject({
  taken_utc: z.string(),
  corpus: z.string(),
  write_mark: z.string().optional(),
  tables: z.array(corpusFingerprint).optional(),
  execution_enabled: z.boolean(),
  execution_enabled_for_run: z.boolean(),
  // On a Redis Cluster, `nodes` has each master's settings; the three above then hold for all of them.
  redis: z.strictObject({
    appendonly: z.boolean(),
    maxmemoryPolicy: z.string(),
    durable: z.boolean(),
    nodes: z.array(z.strictObject({ node: z.string(), appendonly: z.boolean(), maxmemoryPolicy: z.string(), durable: z.boolean() })).optional(),
  }),
  volatile_redis_allowed: z.boolean(),
  backup_selftest: z.array(z.strictObject({ name: z.string(), ok: z.boolean() })),
});
export type Baseline = z.infer<typeof baseline>;

/** DESIGN §4's plan object; by_transition counts `revise` too (a unit can count under two kinds). */
export const planSummary = z.strictObject({
  plan_sha256: sha256,
  unit_count: count,
  by_op: counts,
  by_transition: counts,
});
export type PlanSummary = z.infer<typeof planSummary>;

const applyCounts = {
  units_created: count,
  units_updated: count,
  versions_written: count,
  log_rows: count,
};

/** How a verify check reads: what was expected, what was found. */
export const check = z.strictObject({ name: z.string(), expected: z.unknown(), actual: z.unknown(), passed: z.boolean() });
export type Check = z.infer<typeof check>;

const RESULT_SCHEMAS = {
  precheck: z.strictObject({
    write_mark: z.string().optional(),
    tables: z.array(z.strictObject({ table: z.string(), rows: count })).optional(),
    execution_enabled: z.boolean(),
    redis_durable: z.boolean(),
  }),
  'grant-probe': z.strictObject({ role: z.string(), rows: count, all_hold: z.literal(true) }),
  discover: z.strictObject({ records: count, bytes: count, sha256 }),
  /** The plan (runs before issue 29 also fingerprinted the corpus outside it here). */
  cutplan: planSummary.extend({ outside_fingerprint: z.array(corpusFingerprint).optional() }),
  'approval-gate': z.strictObject({
    /** approvals: opened now by valid approvals (decision_ids consumed in the commit that completes the phase); already: a redelivery found it open. */
    released: z.enum(['approvals', 'already']),
    sg_1_keys: z.array(z.string()),
    exec_keys: z.array(z.string()),
    quorum: count,
    decision_ids: z.array(z.number().int().positive()),
  }),
  backup: z.strictObject({
    file: z.string(),
    manifest_file: z.string(),
    bytes: count,
    sha256,
    recipient_fpr: z.string(),
    verified: z.literal(true),
  }),
  execute: z.union([
    z.strictObject({ mode: z.literal('live'), applied: z.literal(true), plan_sha256: sha256, ...applyCounts }),
    z.strictObject({ mode: z.literal('dry'), rehearsed: z.literal(true), rolled_back: z.literal(true), ...applyCounts }),
    z.strictObject({ mode: z.enum(['dry', 'live']), already_applied: z.literal(true), applied_at: z.string() }),
    /** Execute committed but its job was lost with Redis: the reconciler records it from the ledger row. */
    z.strictObject({ mode: z.literal('live'), applied: z.literal(true), plan_sha256: sha256, unit_count: count, recorded_by: z.literal('reconciler, from execution_ledger') }),
  ]),
  verify: z.strictObject({ verdict: z.enum(['PASS', 'FAIL']), checks: count, failed: z.array(z.string()) }),
} satisfies Record<Phase, z.ZodType>;

type PhaseResults = { [P in Phase]: z.infer<(typeof RESULT_SCHEMAS)[P]> };
export type PhaseResult<P extends Phase> = PhaseResults[P];

/** Each phase's result schema, typed per phase (so a phase's schema parses to that phase's result). */
export const PHASE_RESULTS: { [P in Phase]: z.ZodType<PhaseResult<P>> } = RESULT_SCHEMAS;

/** What a phase reports while it runs (bytes, records), merged into its row until the result replaces it. */
export const phaseProgress = z.strictObject({ records: count.optional(), bytes: count.optional() });
export type PhaseProgress = z.infer<typeof phaseProgress>;

/** A result as it may be stored: parsed through its phase's schema (throws on anything else). */
export function phaseResult<P extends Phase>(phase: P, value: unknown): PhaseResult<P> {
  return PHASE_RESULTS[phase].parse(value);
}
