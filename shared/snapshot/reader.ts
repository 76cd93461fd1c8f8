import type { RecordPosition, SnapshotIssue } from './issues.js';
import { checkRecord, type SnapshotRecord } from './record.js';
import { SnapshotScanner, type SnapshotFormat } from './scanner.js';

/** Called for each valid record, in file order. */
export type RecordHandler = (record: SnapshotRecord, at: RecordPosition, ordinal: number) => void;

/**
 * The record level of the snapshot parser: JSON text → checked record. Push
 * the file's chunks in; valid records go to the handler, problems collect in
 * `issues` until `maxErrors`, after which the caller should stop reading.
 */
export class SnapshotReader {
  readonly issues: SnapshotIssue[] = [];
  /** Valid records seen. */
  records = 0;
  private readonly scanner: SnapshotScanner;

  constructor(
    private readonly options: { corpus: string; maxErrors: number; onRecord?: RecordHandler },
  ) {
    this.scanner = new SnapshotScanner({
      record: (text, at, ordinal, unterminated) => this.onText(text, at, ordinal, unterminated),
      badUtf8: (text, at, _ordinal, bad) => this.onBadUtf8(text, at, bad),
      problem: (issue) => this.report(issue),
    });
  }

  get format(): SnapshotFormat | null {
    return this.scanner.format;
  }

  get bytes(): number {
    return this.scanner.bytes;
  }

  /** True once the issue limit is reached: reading further would only be discarded. */
  get full(): boolean {
    return this.issues.length >= this.options.maxErrors;
  }

  push(chunk: Buffer): void {
    this.scanner.push(chunk);
  }

  end(): void {
    this.scanner.end();
  }

  /** Adds an issue unless the limit is reached. */
  report(issue: SnapshotIssue): void {
    if (!this.full) this.issues.push(issue);
  }

  private onText(text: string, at: RecordPosition, ordinal: number, unterminated: boolean): void {
    if (this.full) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      // A last line cut short (no newline, no closing brace) is a truncated file, not a typo.
      const truncated = unterminated && !text.trimEnd().endsWith('}');
      this.report({
        line: at.line,
        ...(at.index === undefined ? {} : { index: at.index }),
        field: null,
        message: truncated
          ? 'truncated file: the last record stops before its end (no closing "}" and no final newline)'
          : `invalid JSON: ${(err as Error).message}`,
      });
      return;
    }
    const record = checkRecord(value, this.options.corpus, at, (issue) => this.report(issue));
    if (record === null) return;
    this.records += 1;
    this.options.onRecord?.(record, at, ordinal);
  }

  /** Names the field whose text the bad bytes fell in, when the rest of the record parses. */
  private onBadUtf8(text: string, at: RecordPosition, bad: { offset: number; value: number }): void {
    let field: string | null = null;
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value === 'object' && value !== null) {
        for (const [name, v] of Object.entries(value)) {
          if (name.includes('\ufffd') || (typeof v === 'string' && v.includes('\ufffd'))) {
            field = name;
            break;
          }
        }
      }
    } catch {
      // Not JSON either; the UTF-8 problem is the one to report first.
    }
    this.report({
      line: at.line,
      ...(at.index === undefined ? {} : { index: at.index }),
      field,
      message: `bad UTF-8: byte 0x${bad.value.toString(16).padStart(2, '0')} at byte ${bad.offset + 1} of the record is not valid UTF-8 (save the file as UTF-8)`,
    });
  }
}
