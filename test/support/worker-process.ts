import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_PATH } from './cli.js';

/** A `cutter worker` child process, for tests that kill workers. */
export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves with the point's name once the worker stops at its CUTTER_FAULT point. */
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

/**
 * Starts `cutter worker [--phases …]` with env (plus CUTTER_FAULT when given)
 * and resolves once it prints "worker ready".
 */
export function startWorkerProcess(
  env: Record<string, string>,
  options: { phases?: readonly string[]; fault?: string } = {},
): Promise<WorkerProcess> {
  const args = [CLI_PATH, 'worker', ...(options.phases ? ['--phases', options.phases.join(',')] : [])];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env['PATH'] ?? '', ...env, ...(options.fault ? { CUTTER_FAULT: options.fault } : {}) },
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
