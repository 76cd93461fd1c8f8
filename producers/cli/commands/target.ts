import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CutterError } from '../../../shared/errors.js';
import { formatCriterion, type CriterionId } from '../../../shared/targets/criteria.js';
import { registerTarget } from '../../../shared/targets/intake.js';
import { requireTarget, listTargets, targetJson } from '../../../shared/targets/registry.js';
import { type CliContext, out, outJson, table } from '../context.js';

const INTAKE: CriterionId[] = ['C1', 'C2', 'C3', 'C4'];

async function readRegistrationFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new CutterError('TARGET_FILE_UNREADABLE', `registration file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`}`, {
      kind: 'bad_input',
      cause: err,
    });
  }
}

/** `cutter target register | list | show`. */
export function registerTargetCommands(program: Command, ctx: () => CliContext): void {
  const target = program.command('target').description('registered targets (intake criteria C1–C4)');

  target
    .command('register')
    .description('check a registration file against C1–C4 and register it when all pass (exit 0 / 1 refused)')
    .requiredOption('--file <path>', 'the registration JSON')
    .option('--json', 'print one JSON object')
    .action(async (opts: { file: string; json?: boolean }) => {
      const c = ctx();
      const text = await readRegistrationFile(opts.file);
      const result = await registerTarget(c.db(), text, c.cfg.CUTTER_OPERATOR);
      const skipped = INTAKE.filter((id) => !result.criteria.some((r) => r.id === id));
      if (opts.json) {
        outJson({ registered: result.target !== null, target: result.target ? targetJson(result.target) : null, criteria: result.criteria, not_checked: skipped });
      } else {
        for (const criterion of result.criteria) out(formatCriterion(criterion));
        for (const id of skipped) out(`${id} SKIP not checked: C1 failed`);
        if (result.target) {
          const t = result.target;
          out(`registered target ${t.name} (corpus ${t.corpus}, max_units ${t.maxUnits}, transitions ${t.allowedTransitions.join(', ')}${t.protected ? ', protected' : ''}) by ${t.registeredBy}`);
        }
      }
      if (!result.target) {
        const failed = result.criteria.filter((r) => !r.pass).map((r) => r.id);
        throw new CutterError('TARGET_REFUSED', `target not registered: ${failed.join(', ')} failed`, { kind: 'refused' });
      }
    });

  target
    .command('list')
    .description('every registered target')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const targets = await listTargets(ctx().db());
      if (opts.json) return outJson({ targets: targets.map(targetJson) });
      if (!targets.length) return out('no targets registered');
      out(
        table(
          ['name', 'corpus', 'protected', 'max_units', 'allowed_transitions', 'owner', 'registered_by', 'registered_utc'],
          targets.map((t) => [t.name, t.corpus, t.protected ? 'yes' : 'no', t.maxUnits, t.allowedTransitions.join(','), t.owner, t.registeredBy, t.registeredUtc.toISOString()]),
        ),
      );
    });

  target
    .command('show')
    .argument('<name>')
    .description('one target, every field (exit 2 when unknown)')
    .option('--json', 'print one JSON object')
    .action(async (name: string, opts: { json?: boolean }) => {
      const t = await requireTarget(ctx().db(), name);
      const json = targetJson(t);
      if (opts.json) return outJson(json);
      for (const [k, v] of Object.entries(json)) out(`${k.padEnd(20)} ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    });
}
