import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI_PATH = fileURLToPath(new URL('../../dist/producers/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, feeding `input` on stdin, and collects what it printed. */
export function runProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Runs the built `cutter` binary as a user would, with a clean environment
 * plus the given variables (so the developer's own settings never leak in).
 */
export function runCli(args: string[], env: Record<string, string> = {}, options: { input?: string } = {}): Promise<CliResult> {
  return runProcess(process.execPath, [CLI_PATH, ...args], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_FORMAT: 'json', ...env },
    ...(options.input === undefined ? {} : { input: options.input }),
  });
}

/** Feeds SQL to the real psql binary on stdin, as an operator would. */
export function psql(url: string, input: string): Promise<CliResult> {
  return runProcess('psql', ['-X', '-q', '-d', url], { input });
}
