import { readlink, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import pg from 'pg';
import { runTool } from './proc.js';

/**
 * pg_dump / pg_restore and the connections they share with us. The password
 * of a URL goes to the tools through PGPASSWORD, never on their command line,
 * where any user of the machine could read it in the process list.
 */

export interface ToolVersion {
  /** e.g. "15.20" */
  version: string;
  major: number;
}

/** `pg_dump --version` (or pg_restore) parsed; undefined when it is not on PATH or does not run. */
export async function pgToolVersion(tool: string): Promise<ToolVersion | undefined> {
  const result = await runTool(tool, ['--version'], { timeoutMs: 15_000 });
  if (result.missing || result.code !== 0) return undefined;
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?\S*/.exec(result.stdout);
  if (!match) return undefined;
  return { version: match[0].replace(/^\(PostgreSQL\)\s+/, ''), major: Number(match[1]) };
}

/** Versions of binaries by path, kept while the file is the same one (inode, size, mtime). */
const binaryVersions = new Map<string, { stamp: string; version: ToolVersion }>();

/**
 * The version of the pg_dump a running process is, asked of the executable
 * the kernel says it runs (/proc/PID/exe). On Debian `pg_dump` is pg_wrapper,
 * a Perl script that picks a version and execs its binary: asking the wrapper
 * costs ~50 ms of CPU beside the dump, asking the binary itself ~15 ms, and
 * only once while that file stays the same. Undefined when the process is
 * gone, is not (yet) a pg_dump binary, or the system has no /proc: the caller
 * asks `pg_dump --version` instead.
 */
export async function runningPgDumpVersion(pid: number): Promise<ToolVersion | undefined> {
  const exe = await readlink(`/proc/${pid}/exe`).catch(() => undefined);
  if (exe === undefined || basename(exe) !== 'pg_dump') return undefined;
  const file = await stat(exe).catch(() => undefined);
  if (!file) return undefined;
  const stamp = `${file.ino}:${file.size}:${file.mtimeMs}`;
  const known = binaryVersions.get(exe);
  if (known?.stamp === stamp) return known.version;
  const version = await pgToolVersion(exe);
  if (version) binaryVersions.set(exe, { stamp, version });
  return version;
}

/** The URL without its password, and the environment that carries the password instead. */
export function libpqTarget(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const parsed = new URL(url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (parsed.password) {
    env['PGPASSWORD'] = decodeURIComponent(parsed.password);
    parsed.password = '';
  }
  // libpq also takes the password as a query parameter; it must leave the command line too.
  const queryPassword = parsed.searchParams.get('password');
  if (queryPassword !== null) {
    env['PGPASSWORD'] = queryPassword;
    parsed.searchParams.delete('password');
  }
  // A server that does not answer must fail the backup, not hang it.
  env['PGCONNECT_TIMEOUT'] ??= '10';
  return { dbname: parsed.toString(), env };
}

/** The database a URL names (no credentials), for manifests and messages. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** host:port of a URL, for messages (never the user or password). */
export function serverOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname || 'localhost'}:${u.port || '5432'}`;
}

/** A client for one short conversation with the server. */
export async function connect(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
  });
  // A connection dropped by the server later must not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Major version number of a server_version_num (150020 → 15). */
export function serverMajor(versionNum: string | number): number {
  return Math.floor(Number(versionNum) / 10000);
}
