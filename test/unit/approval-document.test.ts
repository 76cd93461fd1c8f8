import { describe, expect, it } from 'vitest';
import { parseApprovalDocument, serialiseApprovalDocument } from '../../shared/approval/document.js';
import { errorCode } from '../../shared/errors.js';
import { documentText, type DocFields } from '../support/sovereign.js';

const PLAN = 'ab'.repeat(32);
const base: DocFields = {
  version: 'v1',
  gate: 'SG_1',
  run_id: 'run-20261124-021500-ab12cd',
  target: 'icx-work',
  plan_sha256: PLAN,
  signed_utc: '2026-11-24T02:15:00Z',
  expires_utc: '2026-11-24T14:15:00Z',
  allowance: 'max_units=55; transitions=new->draft,draft->enacted,revise',
  nonce: '0123456789abcdef0123456789abcdef',
};
const text = documentText(base);

function codeOf(doc: string): string {
  try {
    parseApprovalDocument(doc);
    return 'accepted';
  } catch (err) {
    return errorCode(err);
  }
}

describe('the approval document (DESIGN §3)', () => {
  it('parses the exact text and serialises back to the same bytes', () => {
    const doc = parseApprovalDocument(text);
    expect(doc).toMatchObject({
      gate: 'SG_1',
      runId: base.run_id,
      target: 'icx-work',
      planSha256: PLAN,
      allowance: { kind: 'plan', maxUnits: 55, transitions: ['new->draft', 'draft->enacted', 'revise'] },
      nonce: base.nonce,
    });
    expect(doc.signedUtc.toISOString()).toBe('2026-11-24T02:15:00.000Z');
    expect(serialiseApprovalDocument(doc)).toBe(text);
  });

  it('parses an EXEC grant, whose allowance is execution_enabled=true', () => {
    const exec = documentText({ ...base, gate: 'EXEC', allowance: 'execution_enabled=true' });
    expect(parseApprovalDocument(exec).allowance).toEqual({ kind: 'exec' });
    expect(serialiseApprovalDocument(parseApprovalDocument(exec))).toBe(exec);
  });

  it("parses an allowance naming a revert's transitions (docs/undo.md)", () => {
    const revert = documentText({ ...base, allowance: 'max_units=9; transitions=draft->retired,enacted->draft,retired->draft,retired->enacted,revise' });
    expect(parseApprovalDocument(revert).allowance).toEqual({
      kind: 'plan',
      maxUnits: 9,
      transitions: ['draft->retired', 'enacted->draft', 'retired->draft', 'retired->enacted', 'revise'],
    });
    expect(serialiseApprovalDocument(parseApprovalDocument(revert))).toBe(revert);
  });

  it('parses a rejection, whose allowance is reason=<1-200 printable ASCII characters>, and refuses any other', () => {
    const reject = documentText({ ...base, gate: 'REJECT', allowance: 'reason=the plan retires the wrong units; see ticket #42' });
    expect(parseApprovalDocument(reject).allowance).toEqual({ kind: 'reject', reason: 'the plan retires the wrong units; see ticket #42' });
    expect(serialiseApprovalDocument(parseApprovalDocument(reject))).toBe(reject);
    expect(codeOf(documentText({ ...base, gate: 'REJECT', allowance: `reason=${'x'.repeat(200)}` }))).toBe('accepted');
    for (const allowance of [`reason=${'x'.repeat(201)}`, 'reason=', 'because=no', 'execution_enabled=true', base.allowance]) {
      expect(codeOf(documentText({ ...base, gate: 'REJECT', allowance })), allowance).toBe('APPROVAL_DOCUMENT_FIELD');
    }
    expect(codeOf(documentText({ ...base, gate: 'REJECT', allowance: 'reason=caf\u00e9' }))).toBe('APPROVAL_DOCUMENT_FORMAT');
  });

  const lines = text.slice(0, -1).split('\n');
  const join = (ls: string[]) => `${ls.join('\n')}\n`;
  const cases: [string, string, string][] = [
    ['CRLF line endings', text.replace(/\n/g, '\r\n'), 'APPROVAL_DOCUMENT_FORMAT'],
    ['no final newline', text.slice(0, -1), 'APPROVAL_DOCUMENT_FORMAT'],
    ['two final newlines', `${text}\n`, 'APPROVAL_DOCUMENT_LINES'],
    ['trailing whitespace', text.replace('target: icx-work\n', 'target: icx-work \n'), 'APPROVAL_DOCUMENT_FORMAT'],
    ['a tab', text.replace('target: ', 'target:\t'), 'APPROVAL_DOCUMENT_FORMAT'],
    ['two spaces after the colon', text.replace('target: ', 'target:  '), 'APPROVAL_DOCUMENT_LINES'],
    ['non-ASCII', text.replace('icx-work', 'icx-wörk'), 'APPROVAL_DOCUMENT_FORMAT'],
    ['a byte order mark', `\ufeff${text}`, 'APPROVAL_DOCUMENT_FORMAT'],
    ['a missing line', join(lines.filter((l) => !l.startsWith('nonce:'))), 'APPROVAL_DOCUMENT_LINES'],
    ['an extra line', join([...lines.slice(0, 4), 'comment: hello', ...lines.slice(4)]), 'APPROVAL_DOCUMENT_LINES'],
    ['a repeated line', join([...lines.slice(0, 3), lines[3] ?? '', ...lines.slice(3)]), 'APPROVAL_DOCUMENT_LINES'],
    ['reordered lines', join([lines[0] ?? '', lines[2] ?? '', lines[1] ?? '', ...lines.slice(3)]), 'APPROVAL_DOCUMENT_LINES'],
    ['an empty document', '', 'APPROVAL_DOCUMENT_FORMAT'],
    ['uppercase hex in plan_sha256', documentText({ ...base, plan_sha256: PLAN.toUpperCase() }), 'APPROVAL_DOCUMENT_FIELD'],
    ['uppercase hex in the nonce', documentText({ ...base, nonce: base.nonce.toUpperCase() }), 'APPROVAL_DOCUMENT_FIELD'],
    ['a short nonce', documentText({ ...base, nonce: 'abc' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['another version', documentText({ ...base, version: 'v2' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['milliseconds in a time', documentText({ ...base, signed_utc: '2026-11-24T02:15:00.000Z' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['a time zone offset', documentText({ ...base, signed_utc: '2026-11-24T02:15:00+00:00' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['a date that does not exist', documentText({ ...base, expires_utc: '2026-02-30T00:00:00Z' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['an unknown transition', documentText({ ...base, allowance: 'max_units=5; transitions=draft->new' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['a transition listed twice', documentText({ ...base, allowance: 'max_units=5; transitions=revise,revise' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['an allowance without a space', documentText({ ...base, allowance: 'max_units=5;transitions=revise' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['a negative max_units', documentText({ ...base, allowance: 'max_units=-1; transitions=revise' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['max_units with a leading zero', documentText({ ...base, allowance: 'max_units=05; transitions=revise' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['an EXEC grant with a plan allowance', documentText({ ...base, gate: 'EXEC' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['an SG_1 approval with the EXEC allowance', documentText({ ...base, allowance: 'execution_enabled=true' }), 'APPROVAL_DOCUMENT_FIELD'],
    ['a gate that does not exist', documentText({ ...base, gate: 'SG_2' }), 'APPROVAL_GATE_WRONG'],
    ['a lowercase gate', documentText({ ...base, gate: 'sg_1' }), 'APPROVAL_GATE_WRONG'],
    ['a run id with a colon', documentText({ ...base, run_id: 'run:20261124' }), 'APPROVAL_DOCUMENT_FIELD'],
  ];
  it.each(cases)('refuses %s', (_what, doc, code) => {
    expect(codeOf(doc)).toBe(code);
  });

  it('names what is wrong: the missing line, the misplaced line', () => {
    expect(() => parseApprovalDocument(join(lines.filter((l) => !l.startsWith('nonce:'))))).toThrow(/missing line\(s\): nonce/);
    expect(() => parseApprovalDocument(join([lines[0] ?? '', lines[2] ?? '', lines[1] ?? '', ...lines.slice(3)]))).toThrow(/line 2 is "run_id" where "gate" belongs/);
  });
});
