import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { APPROVAL_GATES, serialiseApprovalDocument, type ApprovalGate } from '../../../shared/approval/document.js';
import { keyIdentities, sharedIdentity } from '../../../shared/approval/identity.js';
import { buildDocument, generateSovereignKey, readPrivateKey, signDocument } from '../../../shared/approval/sign.js';
import { CutterError } from '../../../shared/errors.js';
import type { AllowanceKind } from '../../../shared/units/lifecycle.js';
import { type CliContext, out, outJson } from '../context.js';
import { parseDurationSeconds } from '../duration.js';
import { fetchFirstKeys, runFromPlanExport, showFirstKeys } from '../sign-review.js';

/**
 * `cutter approval keygen | sign | submit` (DESIGN §4): the sovereign's
 * commands. sign runs where the private key is; it reads the run from the
 * board's API, shows the exact text it signs, and writes the envelope that
 * submit posts to POST /runs/:runId/approvals.
 */

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;
const DEFAULT_TTL = '12h';

/** The part of GET /runs/:runId that signing reads. */
interface RunForSigning {
  run_id: string;
  target: string;
  status: string;
  operator?: string;
  enqueued_by?: string;
  plan: { plan_sha256: string; unit_count: number; by_op: Record<string, number>; by_transition: Record<string, number> } | null;
  /** A revert: the run whose applied plan it inverts, and the units it leaves out. */
  revert_of?: string | null;
  revert_skipped?: { count: number } | null;
  approvals?: { allowance_needed: { max_units: number; transitions: string[] } | null } | null;
}

/** Registers the approval commands. */
export function registerApprovalCommands(program: Command, ctx: () => CliContext): void {
  const approval = program.command('approval').description('sovereign approvals: key pairs, signing, submitting');

  approval
    .command('keygen')
    .description('a new Ed25519 key pair: DIR/private/NAME.pem (mode 0600) and DIR/public/NAME.pem')
    .requiredOption('--out <dir>', 'where to write the key pair')
    .option('--name <name>', 'the key name (file name); never the name or database login of an operator who enqueues runs', 'sovereign')
    .action(async (opts: { out: string; name: string }) => {
      if (!KEY_NAME.test(opts.name)) {
        throw new CutterError('KEY_NAME_INVALID', '--name must be letters, digits, . _ @ - (at most 128)', { kind: 'bad_input' });
      }
      const dir = resolve(opts.out);
      const privateDir = join(dir, 'private');
      const publicDir = join(dir, 'public');
      await mkdir(privateDir, { recursive: true, mode: 0o700 });
      await mkdir(publicDir, { recursive: true, mode: 0o755 });
      const key = generateSovereignKey();
      const privatePath = join(privateDir, `${opts.name}.pem`);
      const publicPath = join(publicDir, `${opts.name}.pem`);
      await writeNew(privatePath, key.privatePem, 0o600);
      // The umask can only remove bits; chmod makes 0600 certain whatever it is.
      await chmod(privatePath, 0o600);
      await writeNew(publicPath, key.publicPem, 0o644);
      out(`key ${opts.name}  key_id ${key.keyId}`);
      out(`private key: ${privatePath} (mode 0600; keep it offline, it signs approvals)`);
      out(`public key:  ${publicPath} (copy it into the SOVEREIGN_KEYS directory of the board and workers)`);
      if (opts.name === ctx().cfg.CUTTER_OPERATOR) {
        out(`note: ${opts.name} is also CUTTER_OPERATOR here; this key cannot approve runs that ${opts.name} enqueues`);
      }
    });

  approval
    .command('sign')
    .description('fetch the run, show exactly what is signed, write the signed envelope')
    .addOption(new Option('--gate <gate>', 'SG_1, EXEC, or REJECT (ends the run rejected)').choices(APPROVAL_GATES).makeOptionMandatory())
    .requiredOption('--run <run_id>', 'the run paused at SG_1')
    .requiredOption('--key <file>', 'the Ed25519 private key (PEM)')
    .option('--ttl <duration>', 'how long the approval stays valid (at most 72h)', DEFAULT_TTL)
    .option('--out <file>', 'where to write the envelope (default ./<run>.<gate>.<key>.approval.json)')
    .option('--reason <text>', 'REJECT: why (1-200 printable ASCII characters)')
    .option('--plan-export <file>', 'sign offline from this plan export (cutter plan show RUN --format ndjson), refused unless it hashes to its plan_sha256')
    .action(async (opts: { gate: ApprovalGate; run: string; key: string; ttl: string; out?: string; reason?: string; planExport?: string }) => {
      const { gate } = opts;
      if ((gate === 'REJECT') !== (opts.reason !== undefined)) {
        throw new CutterError('REASON_INVALID', '--reason goes with --gate REJECT, and only with it', { kind: 'bad_input' });
      }
      const ttlS = parseDurationSeconds(opts.ttl, '--ttl');
      if (ttlS > 72 * 3600) throw new CutterError('DURATION_INVALID', '--ttl may be at most 72h', { kind: 'bad_input' });
      const keyText = await readFile(opts.key, 'utf8').catch((err: Error) => {
        throw new CutterError('KEY_UNREADABLE', `cannot read ${opts.key}: ${err.message}`, { kind: 'bad_input' });
      });
      const privateKey = readPrivateKey(keyText, opts.key);
      const offline = opts.planExport ? await runFromPlanExport(opts.planExport, opts.run) : null;
      const api = ctx().cfg.CUTTER_API_URL;
      const run: RunForSigning = offline?.run ?? (await fetchRun(api, opts.run));
      if ((!offline && run.status !== 'awaiting_approval') || !run.plan) {
        throw new CutterError('RUN_NOT_AWAITING', `run ${run.run_id} is ${run.status}, not awaiting_approval: there is nothing to sign`, { kind: 'refused' });
      }
      // A rejection allows nothing, so it needs no allowance (and may reject a plan that changes nothing).
      const allowance = gate === 'REJECT' ? { max_units: 0, transitions: [] } : allowanceFor(run);
      const doc = buildDocument(
        { gate, runId: run.run_id, target: run.target, planSha256: run.plan.plan_sha256, maxUnits: allowance.max_units, transitions: allowance.transitions as AllowanceKind[], ...(opts.reason === undefined ? {} : { reason: opts.reason }) },
        { ttlS },
      );
      const text = serialiseApprovalDocument(doc);
      const envelope = signDocument(text, privateKey);
      const keyName = basename(opts.key).replace(/\.pem$/, '');
      const file = resolve(opts.out ?? `${run.run_id}.${gate}.${keyName}.approval.json`);
      out(`run ${run.run_id}  target ${run.target}  plan ${run.plan.plan_sha256}`);
      out(`units ${run.plan.unit_count}  by op ${JSON.stringify(run.plan.by_op)}  by transition ${JSON.stringify(run.plan.by_transition)}`);
      if (run.revert_of) {
        const skipped = run.revert_skipped?.count ?? 0;
        out(`this run reverts run ${run.revert_of}: each unit back to its state and body before it${skipped ? `; ${skipped} unit(s) changed since are skipped` : ''}`);
      }
      const firstKeys = offline?.firstKeys ?? (await fetchFirstKeys(run.run_id, Object.keys(run.plan.by_op), (path) => request(`${api}${path}`, { headers: { accept: 'application/json' } })));
      showFirstKeys(run, firstKeys, opts.planExport);
      out(`signing with key ${keyName} (key_id ${envelope.key_id}) exactly these ${Buffer.byteLength(text)} bytes (LF line endings):`);
      out('-----');
      process.stdout.write(text);
      out('-----');
      // The board also knows identities.json; this sees the key's name only.
      const self = sharedIdentity({ identities: keyIdentities(keyName) }, { operator: run.operator ?? '', enqueuedBy: run.enqueued_by ?? '' });
      if (self !== null) {
        out(`warning: key ${keyName} is named like ${self}, who enqueued the run: the endpoint will refuse it (no self-approval)`);
      }
      await writeFile(file, `${JSON.stringify(envelope, null, 2)}\n`, { mode: 0o644 });
      out(`envelope written to ${file}`);
      out(`submit it: cutter approval submit ${file}`);
    });

  approval
    .command('submit')
    .description('POST a signed envelope to the approval endpoint; exit 0 accepted, 1 refused')
    .argument('<file>', 'the envelope written by cutter approval sign')
    .option('--json', 'print the endpoint answer as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const body = await readFile(file, 'utf8').catch((err: Error) => {
        throw new CutterError('FILE_UNREADABLE', `cannot read ${file}: ${err.message}`, { kind: 'bad_input' });
      });
      const runId = runIdOfEnvelope(body, file);
      const url = `${ctx().cfg.CUTTER_API_URL}/runs/${encodeURIComponent(runId)}/approvals`;
      const { status, json } = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (opts.json) outJson(json);
      if (status === 201) {
        const a = json as { gate: string; rejected?: boolean; released: boolean; waiting_for: string[]; sg_1?: { valid_keys: number; quorum: number } };
        if (!opts.json && a.rejected) out(`rejected: run ${runId} has ended rejected; its jobs are removed and its corpus released`);
        else if (!opts.json) {
          out(`accepted: ${a.gate} for run ${runId}`);
          if (a.sg_1) out(`SG_1 keys: ${a.sg_1.valid_keys} of ${a.sg_1.quorum}`);
          out(a.released ? 'released: the gate is open, the run goes on to backup and execute' : `not released yet: waiting for ${a.waiting_for.join(', ') || 'nothing'}`);
        }
        return;
      }
      const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new CutterError(error?.code ?? `HTTP_${status}`, `refused (HTTP ${status}): ${error?.message ?? 'no error body'}`, { kind: 'refused' });
    });
}

/** Writes a file that must not exist yet (a key is never overwritten). */
async function writeNew(path: string, text: string, mode: number): Promise<void> {
  await writeFile(path, text, { mode, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') throw new CutterError('KEY_EXISTS', `${path} exists; keys are never overwritten: choose another --name or --out`, { kind: 'bad_input' });
    throw err;
  });
}

async function request(url: string, init: RequestInit): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new CutterError('API_UNREACHABLE', `cannot reach ${url} (${(err as Error).message}): is \`cutter board\` running, and CUTTER_API_URL right?`, { kind: 'refused' });
  }
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as unknown };
  } catch {
    throw new CutterError('API_ANSWER_INVALID', `${url} answered HTTP ${res.status} with something that is not JSON`, { kind: 'refused' });
  }
}

async function fetchRun(api: string, runId: string): Promise<RunForSigning> {
  const { status, json } = await request(`${api}/runs/${encodeURIComponent(runId)}`, { headers: { accept: 'application/json' } });
  if (status === 404) throw new CutterError('RUN_UNKNOWN', `no run ${runId} at ${api}`, { kind: 'bad_input' });
  if (status !== 200) throw new CutterError('API_ANSWER_INVALID', `${api} answered HTTP ${status} for run ${runId}`, { kind: 'refused' });
  return json as RunForSigning;
}

/** The smallest allowance covering the plan: from the API, or counted from the plan summary. */
function allowanceFor(run: RunForSigning): { max_units: number; transitions: string[] } {
  const needed = run.approvals?.allowance_needed;
  const plan = run.plan;
  const fromPlan = plan
    ? {
        max_units: plan.unit_count,
        transitions: [
          ...Object.keys(plan.by_transition).filter((t) => (plan.by_transition[t] ?? 0) > 0),
          ...((plan.by_op['revise'] ?? 0) + (plan.by_op['revise+transition'] ?? 0) > 0 ? ['revise'] : []),
        ],
      }
    : null;
  const allowance = needed ?? fromPlan;
  if (!allowance || allowance.transitions.length === 0) {
    throw new CutterError('PLAN_EMPTY', `run ${run.run_id}'s plan changes nothing: there is nothing to approve`, { kind: 'refused' });
  }
  return allowance;
}

function runIdOfEnvelope(body: string, file: string): string {
  let doc: unknown;
  try {
    doc = (JSON.parse(body) as { document?: unknown }).document;
  } catch {
    throw new CutterError('ENVELOPE_INVALID', `${file} is not JSON: expected the envelope written by cutter approval sign`, { kind: 'bad_input' });
  }
  const runId = typeof doc === 'string' ? /^run_id: (\S+)$/m.exec(doc)?.[1] : undefined;
  if (!runId) throw new CutterError('ENVELOPE_INVALID', `${file} has no document with a run_id line`, { kind: 'bad_input' });
  return runId;
}
