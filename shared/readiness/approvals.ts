import { enqueuerIdentities, sharedIdentity, type RunEnqueuer } from '../approval/identity.js';
import { loadTrustedKeys, type TrustedKey, type TrustedKeys } from '../approval/keys.js';
import { listDecisions, tallyDecisions, type GateTally } from '../approval/tally.js';
import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import { CutterError } from '../errors.js';
import { hasEnded } from '../runs/status.js';
import { readOnly } from './read-only.js';
import { phaseDone, type RunContext } from './run-context.js';
import { blocker, messageOf, type BlockerDraft, type PackageResult } from './types.js';

/**
 * The approval contract (DESIGN §3): the trusted keys load, the quorum can
 * be reached without the operator's own keys (by name or identities.json,
 * against the operator label and the database login), and (for a named run
 * awaiting approval) which SG_1 approvals and which EXEC grant are still missing,
 * judged by re-validating the stored ones exactly as the gate will.
 */

export const APPROVAL_CONTRACT = 'approval contract';

export interface ApprovalInput {
  cfg: Config;
  pool: Pool;
  targetName: string | null;
  run: RunContext | null;
  /** execution_enabled(run) now; an EXEC grant only counts while it holds the switch on. */
  switchOnForRun: boolean;
}

const keyLabel = (k: TrustedKey) => `${k.name} [${k.keyId}]`;

interface KeyFacts {
  keys: TrustedKeys;
  eligible: TrustedKey[];
  checks: string[];
  blockers: BlockerDraft[];
}

/** "tester and postgres": the identities of whoever enqueues, each once. */
const identitiesOf = (enqueuer: RunEnqueuer) => enqueuerIdentities(enqueuer).join(' and ');

/** Loads SOVEREIGN_KEYS and judges the quorum for whoever enqueues (operator label and database login). */
async function keyFacts(cfg: Config, enqueuer: RunEnqueuer): Promise<KeyFacts> {
  const quorum = cfg.SOVEREIGN_QUORUM;
  const checks: string[] = [];
  const blockers: BlockerDraft[] = [];
  let keys: TrustedKeys = { source: cfg.SOVEREIGN_KEYS, byId: new Map() };
  if (cfg.SOVEREIGN_KEYS === undefined) {
    checks.push('SOVEREIGN_KEYS: not set, so no approval can be verified');
    blockers.push(blocker('operator', "SOVEREIGN_KEYS pointing at the sovereign public keys (a PEM file, or a directory of NAME.pem files; Ed25519, SPKI), as handed over by the sovereign", 'SOVEREIGN_KEYS is not set: every approval would be refused as signed by an unknown key'));
    return { keys, eligible: [], checks, blockers };
  }
  try {
    keys = await loadTrustedKeys(cfg.SOVEREIGN_KEYS);
  } catch (err) {
    if (!(err instanceof CutterError)) throw err;
    checks.push(`SOVEREIGN_KEYS (${cfg.SOVEREIGN_KEYS}): ${err.message}`);
    blockers.push(blocker('operator', 'SOVEREIGN_KEYS pointing at readable sovereign public keys (PEM, Ed25519, SPKI; no private keys), with a valid identities.json if it has one', err.message));
    return { keys, eligible: [], checks, blockers };
  }
  const all = [...keys.byId.values()];
  const eligible = all.filter((k) => sharedIdentity(k, enqueuer) === null);
  checks.push(`SOVEREIGN_KEYS (${cfg.SOVEREIGN_KEYS}): ${all.length} Ed25519 key(s) loaded: ${all.map(keyLabel).join(', ')}`);
  const own = all.length - eligible.length;
  const who = identitiesOf(enqueuer);
  checks.push(
    `SOVEREIGN_QUORUM=${quorum}: ${eligible.length} key(s) may approve a run of operator ${enqueuer.operator} (database login ${enqueuer.enqueuedBy})${own ? ` (${own} belonging to ${who} cannot: no self-approval)` : ''}; quorum ${eligible.length >= quorum ? 'reachable' : 'NOT reachable'}`,
  );
  if (eligible.length < quorum) {
    const more = quorum - eligible.length;
    blockers.push(
      blocker(
        'sovereign',
        `${more} more sovereign public key(s) in SOVEREIGN_KEYS, of an identity other than ${who}, or SOVEREIGN_QUORUM lowered to ${eligible.length || 1}`,
        `SOVEREIGN_QUORUM=${quorum} needs ${quorum} distinct keys other than the operator's own (of an identity other than ${who}); only ${eligible.length} are loaded`,
      ),
    );
  }
  return { keys, eligible, checks, blockers };
}

/** "1 of the keys a [id], b [id]" — or what stands in when there are none. */
function signers(n: number, keys: TrustedKey[]): string {
  if (keys.length === 0) return `${n} trusted sovereign key(s) (none is loaded yet)`;
  return `${n} of the keys ${keys.map(keyLabel).join(', ')}`;
}

/** The two approvals a live run of the target will need, before any run exists to bind them to. */
function futureApprovals(targetName: string | null, quorum: number, eligible: TrustedKey[], why: string): BlockerDraft[] {
  const runOf = targetName ? `the first live run of target ${targetName}` : 'the first live run';
  const enqueue = `cutter run --target ${targetName ?? 'T'} --snapshot FILE --mode live`;
  return [
    // The operator's move first (enqueue, so a run id and plan hash exist), then the sovereign's.
    blocker(['operator', 'sovereign'], `SG_1 approval per the approval contract for ${runOf}, signed by ${signers(quorum, eligible)}, once that run has paused at SG_1`, `${why}; the run id and plan hash an approval binds exist only once \`${enqueue}\` has paused at SG_1`, { gap: 'SG_1' }),
    blocker('sovereign', `EXEC grant for that run per the approval contract (allowance: execution_enabled=true), signed by ${signers(1, eligible)}`, 'it turns the kill switch on for that run alone; while the switch is off execute refuses (KILL_SWITCH_OFF)', { gap: 'EXEC' }),
  ];
}

/** The approvals still missing for a run that is awaiting approval. */
function pendingApprovals(ctx: RunContext, tally: GateTally, eligible: TrustedKey[], switchOn: boolean): BlockerDraft[] {
  const { gate } = ctx;
  const runId = gate.runId;
  const plan = gate.planSha256 ?? '(none yet)';
  const out: BlockerDraft[] = [];
  const given = new Set(tally.sg1.map((a) => a.key.keyId));
  const missing = tally.quorum - tally.sg1.length;
  const deadline = gate.windowEndsAt ? `; submit before ${gate.windowEndsAt.toISOString()}, when the approval window ends and the run expires` : '';
  if (missing > 0) {
    const scope = gate.scope;
    const allowance = scope ? `, with an allowance of at least max_units=${scope.unitCount}; transitions=${scope.transitions.join(',') || '(any)'}` : '';
    out.push(
      blocker(
        'sovereign',
        `SG_1 approval for run ${runId} (plan ${plan}) per the approval contract, signed by ${signers(missing, eligible.filter((k) => !given.has(k.keyId)))}${allowance}`,
        `run ${runId} of target ${gate.target} is awaiting approval with ${tally.sg1.length} of ${tally.quorum} valid SG_1 approval(s)${deadline}`,
        { gap: 'SG_1' },
      ),
    );
  }
  if (tally.exec.length === 0 || !switchOn) {
    out.push(
      blocker(
        'sovereign',
        `EXEC grant for run ${runId} (plan ${plan}) per the approval contract (allowance: execution_enabled=true), signed by ${signers(1, eligible)}`,
        tally.exec.length
          ? `an EXEC grant for run ${runId} is stored, but the kill switch no longer holds on for it (expired or turned off)`
          : `no valid EXEC grant for run ${runId}: the kill switch stays off and execute would refuse${deadline}`,
        { gap: 'EXEC' },
      ),
    );
  }
  return out;
}

/** The login DATABASE_URL connects as: what a run enqueued now would record as enqueued_by. */
async function databaseLogin(pool: Pool): Promise<string> {
  return readOnly(pool, async (client) => (await client.query<{ login: string }>('SELECT session_user AS login')).rows[0]?.login ?? '');
}

/** Keys, quorum and the approvals still to come; the contract is runnable when keys load and the quorum is reachable. */
export async function checkApprovalContract(input: ApprovalInput): Promise<PackageResult> {
  const { cfg, run } = input;
  const quorum = cfg.SOVEREIGN_QUORUM;
  try {
    // Without a run: the label and the login this configuration would enqueue with.
    const enqueuer: RunEnqueuer = run ? run.gate : { operator: cfg.CUTTER_OPERATOR, enqueuedBy: await databaseLogin(input.pool) };
    const facts = await keyFacts(cfg, enqueuer);
    const checks = [...facts.checks];
    const blockers = [...facts.blockers];
    const contractOk = facts.blockers.length === 0;
    if (!run) {
      blockers.push(...futureApprovals(input.targetName, quorum, facts.eligible, 'no run is named (--run), so no approval can exist yet'));
    } else if (run.run.mode !== 'live' || hasEnded(run.run.status)) {
      const what = run.run.mode !== 'live' ? 'a dry run, which has no SG_1 gate and never executes' : `${run.run.status}: it can no longer be approved`;
      blockers.push(blocker('operator', `a live run of target ${run.run.target} enqueued: cutter run --target ${run.run.target} --snapshot FILE --mode live`, `run ${run.run.run_id} is ${what}`));
      blockers.push(...futureApprovals(run.run.target, quorum, facts.eligible, `run ${run.run.run_id} cannot be approved`));
    } else if (phaseDone(run, 'approval-gate')) {
      checks.push(`run ${run.run.run_id} has passed its SG_1 gate: its approvals were consumed`);
    } else {
      const rows = await readOnly(input.pool, (client) => listDecisions(client, run.run.run_id, 'unconsumed'));
      const tally = tallyDecisions(rows, { keys: facts.keys, run: run.gate, now: new Date(), stage: 'gate', quorum });
      checks.push(
        `run ${run.run.run_id} (${run.run.status}): ${rows.length} stored approval(s) re-validated as the gate will: ${tally.sg1.length} valid SG_1 of ${quorum}, ${tally.exec.length} valid EXEC`,
        ...tally.invalid.map((i) => `decision ${i.id} (${i.gate}) does not count: ${i.code}: ${i.message}`),
      );
      if (run.run.status !== 'awaiting_approval') {
        const plan = run.gate.planSha256 ? ` (plan ${run.gate.planSha256})` : '';
        blockers.push(
          blocker('sovereign', `SG_1 approval for run ${run.run.run_id}${plan} per the approval contract, signed by ${signers(quorum, facts.eligible)}, once it pauses at SG_1`, `run ${run.run.run_id} is ${run.run.status} and has not reached SG_1 yet`, { gap: 'SG_1' }),
          blocker('sovereign', `EXEC grant for run ${run.run.run_id} per the approval contract (allowance: execution_enabled=true), signed by ${signers(1, facts.eligible)}`, 'it turns the kill switch on for that run alone', { gap: 'EXEC' }),
        );
      } else blockers.push(...pendingApprovals(run, tally, facts.eligible, input.switchOnForRun));
    }
    return {
      name: APPROVAL_CONTRACT,
      runnable: contractOk ? 'YES' : 'NO',
      verified: contractOk
        ? `SOVEREIGN_KEYS loaded (${facts.keys.byId.size} key(s)) and SOVEREIGN_QUORUM=${quorum} is reachable without the keys of ${identitiesOf(enqueuer)}${run ? `; run ${run.run.run_id}'s stored approvals re-validated` : ''}`
        : `SOVEREIGN_KEYS / SOVEREIGN_QUORUM checked: approvals cannot be verified yet`,
      checks,
      blockers,
      failure: null,
    };
  } catch (err) {
    return { name: APPROVAL_CONTRACT, runnable: 'NO', verified: 'not checked', checks: [], blockers: [], failure: `approval contract: ${messageOf(err)}` };
  }
}
