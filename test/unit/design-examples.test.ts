import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseApprovalDocument, serialiseApprovalDocument } from '../../shared/approval/document.js';

/** The worked examples of the docs are parsed by the code that parses the real thing. */

/** Every fenced block of a doc that is an approval document (not its template with <placeholders>). */
function examplesIn(doc: string): string[] {
  const text = readFileSync(new URL(`../../docs/${doc}`, import.meta.url), 'utf8');
  return [...text.matchAll(/```\n(cutter-approval: v1\n[\s\S]*?)```/g)].map((m) => m[1] ?? '').filter((t) => !t.includes('<'));
}

describe('worked examples of the approval and rejection documents', () => {
  it('docs/design.md (SG_1) and docs/stopping-runs.md (REJECT) hold examples that parse exactly and print back to the same bytes', () => {
    const examples = [...examplesIn('design.md'), ...examplesIn('stopping-runs.md')];
    expect(examples.map((e) => /^gate: (\S+)$/m.exec(e)?.[1])).toEqual(expect.arrayContaining(['SG_1', 'REJECT']));
    for (const text of examples) {
      const doc = parseApprovalDocument(text);
      expect(serialiseApprovalDocument(doc)).toBe(text);
    }
  });
});
