import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { redactText } from '../logger.js';

/**
 * Child processes for the backup runner: always argument arrays (no shell, so
 * a fingerprint or path can never become a command), output captured with a
 * cap so a chatty tool cannot grow memory without bound.
 */

export interface ToolResult {
  /** The program was not found on PATH (spawn ENOENT). */
  missing: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const OUTPUT_CAP = 4 * 1024 * 1024;

/** Keeps the first `cap` characters of a stream (listings) or the last (error output). */
export class Capture {
  private text = '';
  constructor(
    private readonly cap: number,
    private readonly keep: 'head' | 'tail',
  ) {}

  add(chunk: string): void {
    if (this.keep === 'head') {
      if (this.text.length < this.cap) this.text += chunk.slice(0, this.cap - this.text.length);
    } else {
      this.text = (this.text + chunk).slice(-this.cap);
    }
  }

  toString(): string {
    return this.text;
  }
}

/** How a child ended; spawnError is set when it never started. */
export interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError: NodeJS.ErrnoException | undefined;
}

/** Resolves once the child has exited and its stdio closed (or failed to start). */
export function childEnd(child: ChildProcess): Promise<ChildEnd> {
  return new Promise((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      // 'error' also fires when a kill fails after exit; only a failed start has no pid.
      if (child.pid === undefined) resolve({ code: null, signal: null, spawnError: err });
    });
    child.once('close', (code, signal) => resolve({ code, signal, spawnError: undefined }));
  });
}

/** Collects a child's stderr (tail) as text. */
export function collectStderr(child: ChildProcess, cap = 64 * 1024): Capture {
  const capture = new Capture(cap, 'tail');
  child.stderr?.setEncoding('utf8').on('data', (d: string) => capture.add(d));
  return capture;
}

/** Runs a tool to completion and returns its output; never throws for a failing tool. */
export async function runTool(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<ToolResult> {
  const spawnOptions: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env };
  const child = spawn(command, [...args], spawnOptions);
  // Our own timer rather than spawn's `timeout`: that one is never cleared when
  // the program is missing, and would hold the process open until it fires.
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const stdout = new Capture(OUTPUT_CAP, 'head');
  const stderr = collectStderr(child);
  child.stdout?.setEncoding('utf8').on('data', (d: string) => stdout.add(d));
  // A tool that exits without reading its input must not crash us with EPIPE.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(options.input ?? '');
  const end = await childEnd(child);
  clearTimeout(timer);
  return {
    missing: end.spawnError?.code === 'ENOENT',
    code: end.spawnError ? null : end.code,
    signal: end.signal,
    stdout: stdout.toString(),
    stderr: end.spawnError ? String(end.spawnError.message) : stderr.toString(),
  };
}

const TROUBLE = /error|fail|warning|manipulated|bad|invalid|denied|no secret|unusable|not found|does not exist/i;

/**
 * The last meaningful lines of a tool's error output, on one line, without
 * credentials; lines that report trouble win over chatter such as gpg's
 * "encrypted with … key" notes.
 */
export function lastLines(stderr: string, max = 3): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('[GNUPG:]'));
  const trouble = lines.filter((l) => TROUBLE.test(l));
  return redactText((trouble.length ? trouble : lines).slice(-max).join(' | ')) || '(no error output)';
}

/** Describes how a child ended, for messages. */
export function describeEnd(end: ChildEnd): string {
  if (end.spawnError) return `could not start (${end.spawnError.code ?? end.spawnError.message})`;
  if (end.signal) return `killed by ${end.signal}`;
  return `exit code ${String(end.code)}`;
}
