import { readFile, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTool } from '../backup/proc.js';
import { blocker, type PackageResult } from './types.js';

export const DEPLOYED_VERSION = 'deployed version';

/** The cutter package root: the nearest directory above this file whose package.json is cutter's. */
async function packageRoot(): Promise<{ root: string; version: string } | null> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i += 1) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'cutter' && typeof pkg.version === 'string') return { root: dir, version: pkg.version };
    } catch {
      // No (readable) package.json here: look one level up.
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * The commit, only when the package root is itself the top of a git work
 * tree: inside some other repository (an app that vendors cutter) HEAD would
 * name that repository's commit, not ours. rev-parse only reads.
 */
async function gitCommit(root: string): Promise<string | null> {
  const r = await runTool('git', ['-C', root, 'rev-parse', '--show-toplevel', 'HEAD'], { timeoutMs: 10_000 });
  if (r.missing || r.code !== 0) return null;
  const [top, head] = r.stdout.trim().split('\n');
  if (!top || !head || !/^[0-9a-f]{40,64}$/.test(head)) return null;
  const [a, b] = await Promise.all([realpath(top).catch(() => top), realpath(root).catch(() => root)]);
  return a === b ? head : null;
}

/** package.json's version and the git commit when `git rev-parse HEAD` answers for this checkout. */
export async function checkDeployedVersion(): Promise<PackageResult> {
  const pkg = await packageRoot();
  if (!pkg) {
    const why = "cutter's package.json was not found above the running code";
    return { name: DEPLOYED_VERSION, runnable: 'NO', verified: why, checks: [why], blockers: [blocker('operator', 'a complete cutter installation (its package.json beside dist/)', why)], failure: null };
  }
  const commit = await gitCommit(pkg.root);
  const checks = [`package.json (${pkg.root}): cutter ${pkg.version}`, commit ? `git rev-parse HEAD: ${commit}` : 'git commit: unknown (not a git checkout, or git is not available)'];
  return { name: DEPLOYED_VERSION, runnable: 'YES', verified: `cutter ${pkg.version}${commit ? `, git commit ${commit}` : ', git commit unknown'}`, checks, blockers: [], failure: null };
}
