import { describe, expect, it } from 'vitest';
import { markdownToHtml } from '../../board/pages/markdown.js';
import { formatHead, headInReport, parseHead } from '../../shared/audit/head.js';
import { CutterError } from '../../shared/errors.js';

const hash = 'ab'.repeat(32);

function refusal(work: () => unknown): { code: string; kind: string; message: string } {
  try {
    work();
  } catch (err) {
    if (err instanceof CutterError) return { code: err.code, kind: err.kind, message: err.message };
    throw err;
  }
  throw new Error('accepted');
}

describe('a written audit chain head', () => {
  it('is SEQ:HASH, and nothing else', () => {
    expect(parseHead(`1234:${hash}`)).toEqual({ seq: 1234, hash });
    expect(formatHead({ seq: 1234, hash })).toBe(`1234:${hash}`);
    for (const bad of ['', '1234', `0:${hash}`, `-1:${hash}`, `01:${hash}`, `12:${hash.toUpperCase()}`, `12:${hash}0`, `12:${hash.slice(1)}`, `99999999999999999:${hash}`]) {
      expect(refusal(() => parseHead(bad)), bad).toMatchObject({ code: 'AUDIT_HEAD_MALFORMED', kind: 'bad_input' });
    }
  });

  it('is found on its line in a report, as markdown or as the board renders it', () => {
    const md = `# Run r-1\n\n## Verdict\n\n**PASS**\n\n## Audit chain\n\naudit chain head: 77:${hash}\n\nThe chain's last row.\n`;
    expect(headInReport(md, 'r.md')).toEqual({ seq: 77, hash });
    expect(headInReport(markdownToHtml(md).toString(), 'r.html')).toEqual({ seq: 77, hash });
  });

  it('refuses a report with no head, a head that is not one, or two different heads', () => {
    expect(refusal(() => headInReport('# Run r-1\n', 'r.md'))).toMatchObject({ code: 'AUDIT_HEAD_NOT_IN_REPORT', kind: 'bad_input' });
    expect(refusal(() => headInReport('audit chain head: none (the chain is empty)\n', 'r.md'))).toMatchObject({ code: 'AUDIT_HEAD_MALFORMED' });
    expect(refusal(() => headInReport(`audit chain head: 1:${hash}\naudit chain head: 2:${hash}\n`, 'r.md')).message).toBe('r.md names 2 different audit chain heads; a report names one');
    expect(headInReport(`audit chain head: 1:${hash}\naudit chain head: 1:${hash}\n`, 'r.md')).toEqual({ seq: 1, hash });
  });
});
