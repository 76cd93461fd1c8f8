import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { PhaseMoment } from '../../shared/jobs/moments.js';
import { CLI_PATH } from './cli.js';

/** A `cutter worker` child process, for tests that kill workers. */
export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves with the moment's name once the worker stops at its fault (options.fault). */
  paused: Promise<string>;
  /** Resolves once the process has exited, however it ended. */
  exited: Promise<void>;
  /** SIGKILL, as a crash would; resolves once it is gone. */
  kill: () => Promise<void>;
  /** SIGTERM (graceful shutdown); resolves once it is gone. */
  stop: () => Promise<void>;
  /** What it printed on stderr so far. */
  stderr: () => string;
}

export interface WorkerOptions {
  phases?: readonly string[] | undefined;
  /** Park the worker at this moment so the test can SIGKILL it there (the fault preload). */
  fault?: PhaseMoment | undefined;
  /** The chaos suite's negative control: execute's ledger check finds nothing (the fault preload). */
  disableLedger?: boolean | undefined;
}

// Resolved here, not by node from its working directory.
const TSX_LOADER = createRequire(import.meta.url).resolve('tsx');
const FAULT_PRELOAD = fileURLToPath(new URL('./fault-preload.ts', import.meta.url));

/**
 * The node arguments for a worker: the built production binary as it ships,
 * or, only when a test asks for a fault or the negative control, with the
 * fault preload in front of it and its test-only variables set.
 */
function workerCommand(options: WorkerOptions): { args: string[]; env: Record<string, string> } {
  const worker = [CLI_PATH, 'worker', ...(options.phases ? ['--phases', options.phases.join(',')] : [])];
  if (!options.fault && !options.disableLedger) return { args: worker, env: {} };
  return {
    args: ['--import', TSX_LOADER, '--import', FAULT_PRELOAD, ...worker],
    env: {
      ...(options.fault ? { CUTTER_FAULT: options.fault } : {}),
      ...(options.disableLedger ? { CUTTER_TEST_DISABLE_LEDGER: 'true' } : {}),
    },
  };
}

/**
 * Starts `cutter worker [--phases …]` with env (and the fault preload when
 * options ask for it) and resolves once it prints "worker ready".
 */
export function startWorkerProcess(env: Record<string, string>, options: WorkerOptions = {}): Promise<WorkerProcess> {
  const command = workerCommand(options);
  const child = spawn(process.execPath, command.args, {
    env: { PATH: process.env['PATH'] ?? '', ...env, ...command.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const paused = new Promise<string>((resolve) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const hit = /cutter-fault: paused at (\S+)/.exec(stderr);
      if (hit?.[1]) resolve(hit[1]);
    });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const signal = async (sig: NodeJS.Signals) => {
    if (!gone()) child.kill(sig);
    await exited;
  };
  const worker: WorkerProcess = { child, paused, exited, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM'), stderr: () => stderr };
  return new Promise((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('worker ready')) resolve(worker);
    });
    child.once('exit', (code) => reject(new Error(`worker exited before it was ready (${String(code)}): ${stderr}`)));
  });
}
