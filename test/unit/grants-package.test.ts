import { describe, expect, it } from 'vitest';
import { FORBIDDEN_TABLE_PRIVILEGES, REQUIRED_GRANTS } from '../../shared/grants/matrix.js';
import {
  grantStatement,
  quoteObject,
  renderGrantPackage,
  revokeMembershipStatement,
  revokeOnStatement,
} from '../../shared/grants/package.js';
import { grantProbeError, type GrantProbeResult } from '../../shared/grants/probe.js';

describe('the deployment grant matrix', () => {
  it('never requires what it forbids', () => {
    const forbidden = REQUIRED_GRANTS.filter((g) => g.kind === 'table' && (FORBIDDEN_TABLE_PRIVILEGES as readonly string[]).includes(g.privilege));
    expect(forbidden).toEqual([]);
  });

  it('lists every (object, privilege) once', () => {
    const keys = REQUIRED_GRANTS.map((g) => `${g.kind} ${g.object} ${g.privilege}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('grant package statements', () => {
  it('quote every identifier, functions keep their argument types', () => {
    expect(quoteObject('public.information_unit')).toBe('"public"."information_unit"');
    expect(quoteObject('cutter_governance.execution_enabled(text)')).toBe('"cutter_governance"."execution_enabled"(text)');
    expect(grantStatement({ kind: 'sequence', object: 'public.information_unit_id_seq', privilege: 'USAGE' }, 'cutter_exec')).toBe(
      'GRANT USAGE ON SEQUENCE "public"."information_unit_id_seq" TO "cutter_exec";',
    );
    expect(revokeOnStatement({ grantKeyword: 'TABLE', alterKeyword: 'TABLE', sql: '"public"."we""ird"' }, 'DELETE', 'PUBLIC')).toBe(
      'REVOKE DELETE ON TABLE "public"."we""ird" FROM PUBLIC;',
    );
    expect(revokeMembershipStatement('workflow_admin', 'Exec Role')).toBe('REVOKE "workflow_admin" FROM "Exec Role";');
  });

  it('an empty package is one comment line saying nothing is missing', () => {
    const text = renderGrantPackage({ role: 'cutter_exec', missing: [], excess: [] }, { database: 'cutter' });
    expect(text).toBe('-- cutter grant package for role "cutter_exec" on database "cutter": nothing is missing and nothing is excess\n');
  });

  it('a package is one psql transaction that stops on the first error, REVOKEs before GRANTs', () => {
    const text = renderGrantPackage({
      role: 'cutter_exec',
      missing: ['GRANT SELECT ON TABLE "public"."unit_version" TO "cutter_exec";'],
      excess: ['REVOKE DELETE ON TABLE "public"."information_unit" FROM "cutter_exec";'],
    });
    const lines = text.trimEnd().split('\n');
    const code = lines.filter((l) => !l.startsWith('--'));
    expect(code).toEqual([
      '\\set ON_ERROR_STOP on',
      'BEGIN;',
      'REVOKE DELETE ON TABLE "public"."information_unit" FROM "cutter_exec";',
      'GRANT SELECT ON TABLE "public"."unit_version" TO "cutter_exec";',
      'COMMIT;',
    ]);
  });
});

describe('grantProbeError', () => {
  const base: GrantProbeResult = { ok: true, role: 'cutter_exec', rows: [], missing: [], excess: [] };

  it('is undefined for a passing probe', () => {
    expect(grantProbeError(base)).toBeUndefined();
  });

  it('names excess first (GRANTS_EXCESS), then missing grants (GRANTS_MISSING)', () => {
    const deleteRow = { object: 'public.information_unit', kind: 'table', privilege: 'DELETE', expected: 'absent', actual: true, ok: false } as const;
    const selectRow = { object: 'public.unit_version', kind: 'table', privilege: 'SELECT', expected: 'held', actual: false, ok: false } as const;
    const both = grantProbeError({ ...base, ok: false, rows: [deleteRow, selectRow], missing: ['GRANT ...'], excess: ['REVOKE ...'] });
    expect(both?.code).toBe('GRANTS_EXCESS');
    expect(both?.message).toContain('DELETE on table public.information_unit');
    expect(both?.message).toContain('also lacks 1 required grant(s)');
    const missing = grantProbeError({ ...base, ok: false, rows: [selectRow], missing: ['GRANT ...'] });
    expect(missing?.code).toBe('GRANTS_MISSING');
    expect(missing?.message).toContain('SELECT on table public.unit_version');
  });
});
