import { isUtf8 } from 'node:buffer';
import type { RecordPosition, SnapshotIssue } from './issues.js';
import { SNAPSHOT_LIMITS } from './record.js';

/**
 * The byte level of the snapshot parser: cuts a stream of chunks into record
 * texts, NDJSON or a JSON array, told apart by the first non-blank character
 * (`{` or `[`). It holds at most one record (plus one chunk) in memory, so
 * memory does not grow with the file. Every structural character of JSON is
 * ASCII and no UTF-8 multi-byte sequence contains an ASCII byte, so cutting
 * bytes at `\n`, `,` or `]` never splits a character.
 */

export type SnapshotFormat = 'ndjson' | 'json-array';

/** What the scanner hands on. `ordinal` counts records from 0 in file order. */
export interface ScanSink {
  /** A record's JSON text. `unterminated`: the last NDJSON line, with no newline after it. */
  record(text: string, at: RecordPosition, ordinal: number, unterminated: boolean): void;
  /** A record whose bytes are not UTF-8: its text decoded with U+FFFD, and where the first bad byte is. */
  badUtf8(text: string, at: RecordPosition, ordinal: number, badByte: { offset: number; value: number }): void;
  /** A problem with the file as a whole or its structure. */
  problem(issue: SnapshotIssue): void;
}

const NL = 0x0a;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const isBlank = (b: number) => b === 0x20 || b === 0x0a || b === 0x09 || b === 0x0d;

/** JSON array states. */
const enum Arr {
  Before, // before the opening [
  First, // after [: an element or ]
  Next, // after a comma: an element
  After, // after an element: , or ]
  InValue,
  End, // after ]: blanks only
}

export class SnapshotScanner {
  format: SnapshotFormat | null = null;
  /** Bytes pushed so far. */
  bytes = 0;
  /** Records (valid or not) found so far. */
  ordinal = 0;
  private line = 1;
  private stopped = false;
  private bomChecked = false;
  /** The first bytes while they could still be a split BOM. */
  private head: Buffer = Buffer.alloc(0);
  // The record being assembled across chunks.
  private parts: Buffer[] = [];
  private partBytes = 0;
  private oversize = false;
  // JSON array state.
  private arr: Arr = Arr.Before;
  private kind: 'container' | 'string' | 'scalar' = 'container';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private valueLine = 1;

  constructor(private readonly sink: ScanSink) {}

  /** Feeds the next chunk of the file. */
  push(input: Buffer): void {
    this.bytes += input.length;
    if (this.stopped) return;
    let chunk = input;
    if (!this.bomChecked) {
      // A BOM split over chunks (a pipe may deliver 1 byte) is held until it can be told apart.
      chunk = this.head.length > 0 ? Buffer.concat([this.head, input]) : input;
      if (chunk.length < BOM.length && BOM.subarray(0, chunk.length).equals(chunk)) {
        this.head = chunk;
        return;
      }
      this.head = Buffer.alloc(0);
      this.bomChecked = true;
      if (chunk.subarray(0, BOM.length).equals(BOM)) chunk = chunk.subarray(BOM.length);
    }
    this.scan(chunk);
  }

  private scan(chunk: Buffer): void {
    if (this.format === null && !this.detect(chunk)) return;
    if (this.format === 'ndjson') this.pushLines(chunk);
    else this.pushArray(chunk);
  }

  /** The file has ended. */
  end(): void {
    if (this.stopped) return;
    if (!this.bomChecked) {
      // The file was only the start of a BOM: those bytes are content after all.
      this.bomChecked = true;
      if (this.head.length > 0) this.scan(this.head);
      if (this.stopped) return;
    }
    if (this.format === null) {
      const message =
        this.bytes === 0
          ? 'the file is empty (0 bytes): expected NDJSON or a JSON array of records'
          : `the file is empty: ${this.bytes} bytes of blank space and no records`;
      return this.problem(this.line, undefined, message);
    }
    if (this.format === 'ndjson') {
      if (this.parts.length > 0 || this.oversize) this.finishLine(true);
    } else if (this.arr === Arr.InValue) {
      return this.problem(this.valueLine, this.ordinal, `truncated file: it ends inside the element at index ${this.ordinal} of the JSON array`);
    } else if (this.arr !== Arr.End) {
      return this.problem(this.line, undefined, 'truncated file: it ends before the closing ] of the JSON array');
    }
    if (this.ordinal === 0) this.problem(this.line, undefined, 'the snapshot contains no records');
  }

  /** Finds the first non-blank byte; false while the chunk is all blank. */
  private detect(chunk: Buffer): boolean {
    let i = 0;
    let lines = 0;
    while (i < chunk.length && isBlank(chunk[i] ?? 0)) {
      if (chunk[i] === NL) lines += 1;
      i += 1;
    }
    if (i === chunk.length) {
      this.line += lines;
      // The open line's leading blanks are kept (as a record's bytes, so within its limit): the
      // first record's text, and the offsets its messages give, must not depend on chunking.
      const nl = chunk.lastIndexOf(NL);
      if (nl >= 0) this.dropParts();
      this.collect(chunk.subarray(nl + 1));
      return false;
    }
    const b = chunk[i] ?? 0;
    if (b === 0x7b) this.format = 'ndjson';
    else if (b === 0x5b) {
      this.format = 'json-array';
      this.dropParts(); // blanks before the [ belong to no element
    } else {
      const shown = b < 0x80 ? JSON.stringify(String.fromCharCode(b)) : `byte 0x${b.toString(16)}`;
      this.problem(this.line + lines, undefined, `not a snapshot: expected NDJSON (a {…} record on each line) or a JSON array ([…]), but the file starts with ${shown}`);
      this.stopped = true;
      return false;
    }
    return true;
  }

  private problem(line: number, index: number | undefined, message: string): void {
    this.sink.problem({ line, ...(index === undefined ? {} : { index }), field: null, message });
  }

  /** Keeps bytes of the record in progress, dropping them once it is over the record limit. */
  private collect(buf: Buffer): void {
    this.partBytes += buf.length;
    if (this.oversize) return;
    if (this.partBytes > SNAPSHOT_LIMITS.maxRecordBytes) {
      this.oversize = true;
      this.parts = [];
      return;
    }
    if (buf.length > 0) this.parts.push(buf);
  }

  private dropParts(): void {
    this.parts = [];
    this.partBytes = 0;
    this.oversize = false;
  }

  private takeParts(): Buffer {
    const buf = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partBytes);
    this.parts = [];
    this.partBytes = 0;
    return buf;
  }

  private oversizeProblem(line: number, index: number | undefined): void {
    this.problem(line, index, `oversize record: more than ${SNAPSHOT_LIMITS.maxRecordBytes} bytes (a body may have at most ${SNAPSHOT_LIMITS.maxBodyBytes} bytes)`);
    this.parts = [];
    this.partBytes = 0;
    this.oversize = false;
    this.ordinal += 1;
  }

  // ---- NDJSON -------------------------------------------------------------

  private pushLines(chunk: Buffer): void {
    let pos = 0;
    if (this.parts.length > 0 || this.oversize) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.collect(chunk);
        return;
      }
      this.collect(chunk.subarray(0, nl));
      this.finishLine(false);
      pos = nl + 1;
    }
    const last = chunk.lastIndexOf(NL);
    if (last >= pos) {
      this.completeLines(chunk.subarray(pos, last + 1));
      pos = last + 1;
    }
    if (pos < chunk.length) this.collect(chunk.subarray(pos));
  }

  /** A run of whole lines (ending in \n): decoded at once when it is all valid UTF-8, the common case. */
  private completeLines(region: Buffer): void {
    if (isUtf8(region)) {
      const text = region.toString('utf8');
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        this.lineText(text.slice(start, nl), false);
        start = nl + 1;
      }
      return;
    }
    let start = 0;
    for (let nl = region.indexOf(NL); nl !== -1; nl = region.indexOf(NL, start)) {
      this.lineBytes(region.subarray(start, nl), false);
      start = nl + 1;
    }
  }

  private finishLine(unterminated: boolean): void {
    if (this.oversize) {
      this.oversizeProblem(this.line, undefined);
      this.line += 1;
      return;
    }
    this.lineBytes(this.takeParts(), unterminated);
  }

  private lineBytes(buf: Buffer, unterminated: boolean): void {
    if (isUtf8(buf)) {
      this.lineText(buf.toString('utf8'), unterminated);
      return;
    }
    const text = buf.toString('utf8');
    if (text.trim() !== '') {
      this.sink.badUtf8(text, { line: this.line, index: undefined }, this.ordinal, firstInvalidUtf8(buf));
      this.ordinal += 1;
    }
    this.line += 1;
  }

  private lineText(raw: string, unterminated: boolean): void {
    // Blank lines (including a CRLF file's empty ones) carry no record.
    const first = raw.charCodeAt(0);
    if (raw.length > 0 && (first === 0x7b || raw.trim() !== '')) {
      this.sink.record(raw, { line: this.line, index: undefined }, this.ordinal, unterminated);
      this.ordinal += 1;
    }
    this.line += 1;
  }

  // ---- JSON array ---------------------------------------------------------

  private pushArray(chunk: Buffer): void {
    let start = this.arr === Arr.InValue ? 0 : -1;
    for (let i = 0; i < chunk.length; i += 1) {
      const b = chunk[i] as number;
      if (this.arr === Arr.InValue) {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (b === 0x5c) this.escaped = true;
          else if (b === 0x22) {
            this.inString = false;
            if (this.kind === 'string') this.finishValue(chunk, start, i + 1);
          } else if (b === NL) this.line += 1;
        } else if (this.kind === 'scalar') {
          if (b === 0x2c || b === 0x5d || isBlank(b)) {
            this.finishValue(chunk, start, i);
            i -= 1; // the delimiter is read again in the After state
          }
        } else if (b === 0x22) this.inString = true;
        else if (b === 0x7b || b === 0x5b) this.depth += 1;
        else if (b === 0x7d || b === 0x5d) {
          this.depth -= 1;
          if (this.depth === 0) this.finishValue(chunk, start, i + 1);
        } else if (b === NL) this.line += 1;
        continue;
      }
      if (b === NL) {
        this.line += 1;
        continue;
      }
      if (isBlank(b)) continue;
      switch (this.arr) {
        case Arr.Before:
          this.arr = Arr.First; // detect() guarantees this byte is [
          break;
        case Arr.First:
        case Arr.Next:
          if (b === 0x5d) {
            if (this.arr === Arr.Next) return this.structural(`a trailing comma: expected an element after the comma, found "]"`);
            this.arr = Arr.End;
          } else {
            start = i;
            this.startValue(b);
          }
          break;
        case Arr.After:
          if (b === 0x2c) this.arr = Arr.Next;
          else if (b === 0x5d) this.arr = Arr.End;
          else return this.structural(`invalid JSON: expected "," or "]" after the element at index ${this.ordinal - 1}, found ${describeByte(b)}`);
          break;
        case Arr.End:
          return this.structural(`invalid JSON: unexpected ${describeByte(b)} after the closing ] of the array`);
      }
    }
    if (this.arr === Arr.InValue && start >= 0) this.collect(chunk.subarray(start));
  }

  private startValue(b: number): void {
    this.arr = Arr.InValue;
    this.valueLine = this.line;
    this.parts = [];
    this.partBytes = 0;
    this.oversize = false;
    this.escaped = false;
    if (b === 0x7b || b === 0x5b) {
      this.kind = 'container';
      this.depth = 1;
      this.inString = false;
    } else if (b === 0x22) {
      this.kind = 'string';
      this.inString = true;
    } else {
      this.kind = 'scalar';
      this.inString = false;
    }
  }

  private finishValue(chunk: Buffer, start: number, end: number): void {
    this.collect(chunk.subarray(start, end));
    this.arr = Arr.After;
    const at = { line: this.valueLine, index: this.ordinal };
    if (this.oversize) return this.oversizeProblem(at.line, at.index);
    const buf = this.takeParts();
    if (isUtf8(buf)) this.sink.record(buf.toString('utf8'), at, this.ordinal, false);
    else this.sink.badUtf8(buf.toString('utf8'), at, this.ordinal, firstInvalidUtf8(buf));
    this.ordinal += 1;
  }

  /** A broken array cannot be resynchronised: report where, and read no further. */
  private structural(message: string): void {
    this.problem(this.line, this.ordinal, message);
    this.stopped = true;
  }
}

function describeByte(b: number): string {
  return b < 0x80 && b >= 0x20 ? JSON.stringify(String.fromCharCode(b)) : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

/** The first byte that breaks UTF-8 (only called on a buffer known to be invalid). */
export function firstInvalidUtf8(buf: Buffer): { offset: number; value: number } {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i] as number;
    const need = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0) return { offset: i, value: b };
    if (need > 0 && !isUtf8(buf.subarray(i, i + need + 1))) {
      // A lead byte whose continuation is wrong: name the first byte that is.
      for (let k = 1; k <= need; k += 1) {
        const c = buf[i + k];
        if (c === undefined || (c & 0xc0) !== 0x80) return { offset: i + k < buf.length ? i + k : i, value: c ?? b };
      }
      return { offset: i, value: b }; // overlong or surrogate encoding
    }
    i += need + 1;
  }
  return { offset: buf.length, value: 0 };
}
