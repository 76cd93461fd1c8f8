import { subscribe } from 'node:diagnostics_channel';
import pg from 'pg';
import { LEDGER_ENTRY_SQL } from '../../shared/execute/ledger.js';
import { PHASE_MOMENT_CHANNEL, PHASE_MOMENTS, type PhaseMoment, type PhaseMomentMessage } from '../../shared/jobs/moments.js';

/**
 * The crash tests' switches, preloaded into a spawned `cutter worker` by
 * test/support/worker-process.ts (`node --import tsx --import <this file>`).
 * They live here, in test code, so that production code reads no test
 * switch at all: a worker started without this module ignores both
 * variables (test/integration/test-switches.test.ts checks that).
 *
 * CUTTER_FAULT=<phase>.<before|middle|after>: the worker parks at that
 * moment (shared/jobs/moments.ts). Its event loop keeps running, so the
 * job's lock stays renewed until the test SIGKILLs the process there.
 *
 * CUTTER_TEST_DISABLE_LEDGER=true: the chaos suite's negative control.
 * Execute's exactly-once ledger check finds nothing, so a re-delivered
 * execute tries to apply again and the kill matrix must catch it.
 */

/** What the harness waits for on stderr (test/support/worker-process.ts). */
const ANNOUNCE = 'cutter-fault:';

function refuse(message: string): never {
  process.stderr.write(`${ANNOUNCE} ${message}\n`);
  process.exit(2);
}

function faultMoment(value: string | undefined): PhaseMoment | undefined {
  if (value === undefined || value === '') return undefined;
  if ((PHASE_MOMENTS as readonly string[]).includes(value)) return value as PhaseMoment;
  refuse(`CUTTER_FAULT must be <phase>.before, <phase>.middle or <phase>.after, one of ${PHASE_MOMENTS.join(', ')}; got ${JSON.stringify(value)}`);
}

function ledgerDisabled(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  refuse(`CUTTER_TEST_DISABLE_LEDGER must be true or false; got ${JSON.stringify(value)}`);
}

/** Parks the phase for good at `moment`: the hold is a promise that never settles. */
function pauseAt(moment: PhaseMoment): void {
  subscribe(PHASE_MOMENT_CHANNEL, (message) => {
    const m = message as PhaseMomentMessage;
    if (m.moment !== moment) return;
    process.stderr.write(`${ANNOUNCE} paused at ${moment}\n`);
    m.hold = new Promise<void>(() => undefined);
  });
}

/**
 * Answers execute's ledger read (exactly LEDGER_ENTRY_SQL, through node-postgres)
 * with no rows; every other statement goes through untouched. The patched
 * prototype is the one the worker's pools use: `pg` is one module instance.
 */
function disableLedger(): void {
  type Query = (this: pg.Client, ...args: unknown[]) => unknown;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the client as this
  const query = pg.Client.prototype.query as unknown as Query;
  const isLedgerEntry = (config: unknown): boolean =>
    config === LEDGER_ENTRY_SQL || (typeof config === 'object' && config !== null && (config as { text?: unknown }).text === LEDGER_ENTRY_SQL);
  const patched: Query = function (...args) {
    if (!isLedgerEntry(args[0])) return query.apply(this, args);
    const empty = { command: 'SELECT', rowCount: 0, oid: 0, fields: [], rows: [] };
    const callback = args.find((a): a is (err: Error | null, result: typeof empty) => void => typeof a === 'function');
    if (!callback) return Promise.resolve(empty);
    process.nextTick(() => callback(null, empty));
    return undefined;
  };
  pg.Client.prototype.query = patched as unknown as typeof pg.Client.prototype.query;
  process.stderr.write(`${ANNOUNCE} ledger check disabled (negative control)\n`);
}

const fault = faultMoment(process.env['CUTTER_FAULT']);
if (fault) pauseAt(fault);
if (ledgerDisabled(process.env['CUTTER_TEST_DISABLE_LEDGER'])) disableLedger();
