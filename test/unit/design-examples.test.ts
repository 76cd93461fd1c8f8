import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseApprovalDocument, serialiseApprovalDocument } from '../../shared/approval/document.js';

/** The worked examples of docs/design.md are parsed by the code that parses the real thing. */

const DESIGN = readFileSync(new URL('../../docs/design.md', import.meta.url), 'utf8');

/** Every fenced block of the design that is an approval document (not its template with <placeholders>). */
const examples = [...DESIGN.matchAll(/```\n(cutter-approval: v1\n[\s\S]*?)```/g)].map((m) => m[1] ?? '').filter((text) => !text.includes('<'));

describe('docs/design.md worked examples', () => {
  it('has an approval document example, which parses exactly and prints back to the same bytes', () => {
    expect(examples.length).toBeGreaterThanOrEqual(1);
    for (const text of examples) {
      const doc = parseApprovalDocument(text);
      expect(serialiseApprovalDocument(doc)).toBe(text);
    }
  });
});
