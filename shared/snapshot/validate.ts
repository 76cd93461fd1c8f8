import { SnapshotInvalidError, type RecordPosition, type SnapshotIssue } from './issues.js';
import { KeyIndex } from './key-index.js';
import { SnapshotReader, type RecordHandler } from './reader.js';
import { SNAPSHOT_LIMITS } from './record.js';
import type { SnapshotFormat } from './scanner.js';
import { fileSource, type SnapshotSource } from './source.js';

/** What a clean read of a snapshot found. */
export interface SnapshotCheck {
  format: SnapshotFormat;
  records: number;
  bytes: number;
  /** The source's stamp when the check began (a file's size, mtime and inode), so a later pass can tell it was replaced. */
  fileStamp: string;
}

export interface ValidateOptions {
  /** The target's corpus: every key must start with `${corpus}/`. */
  corpus: string;
  /** Issues to collect before reading stops (default 20). */
  maxErrors?: number;
  /** The duplicate index; tests pass one whose every key collides, to exercise the confirmation. */
  keyIndex?: Pick<KeyIndex, 'add'>;
}

/** Streams a source through a reader, stopping early once the reader is full or `stop` says so. */
export async function readInto(source: SnapshotSource, reader: SnapshotReader, stop: () => boolean = () => false): Promise<boolean> {
  for await (const chunk of source.open()) {
    reader.push(chunk);
    if (reader.full || stop()) return false; // leaving the loop closes the source
  }
  reader.end();
  return true;
}

interface Suspect {
  key: string;
  at: RecordPosition;
  ordinal: number;
  first: number;
}

/**
 * C5: reads the whole snapshot once, checking every record and that keys are
 * unique, and throws SNAPSHOT_INVALID listing the issues (up to maxErrors,
 * in file order) when there are any. Memory stays flat apart from the key
 * index (about 24 MB per million keys).
 */
export async function validateSnapshot(snapshot: string | SnapshotSource, options: ValidateOptions): Promise<SnapshotCheck> {
  const source = typeof snapshot === 'string' ? fileSource(snapshot) : snapshot;
  const maxErrors = Math.max(1, options.maxErrors ?? SNAPSHOT_LIMITS.defaultMaxErrors);
  const file = await source.stat();
  // Sized for records of about 64 bytes, up to a million keys; beyond, it grows.
  const index = options.keyIndex ?? new KeyIndex(Math.min(1 << 20, Math.ceil(file.size / 64)));
  const suspects: Suspect[] = [];
  const onRecord: RecordHandler = (record, at, ordinal) => {
    const first = index.add(record.key, ordinal);
    if (first >= 0) suspects.push({ key: record.key, at, ordinal, first });
  };
  const reader = new SnapshotReader({ corpus: options.corpus, maxErrors, onRecord });
  const completed = await readInto(source, reader, () => reader.issues.length + suspects.length >= maxErrors);
  const issues = [...reader.issues];
  if (suspects.length > 0) issues.push(...(await confirmDuplicates(source, options.corpus, suspects)));
  if (issues.length > 0) {
    issues.sort((x, y) => x.line - y.line || (x.index ?? 0) - (y.index ?? 0));
    throw new SnapshotInvalidError(source.name, issues.slice(0, maxErrors), !completed || issues.length > maxErrors);
  }
  return { format: reader.format ?? 'ndjson', records: reader.records, bytes: reader.bytes, fileStamp: file.stamp };
}

/**
 * Turns suspected duplicates into issues by comparing real keys: one more
 * read, only when the key index reported a hit, to fetch the keys of the
 * first occurrences. Records sharing a hash are grouped by their actual key.
 */
async function confirmDuplicates(source: SnapshotSource, corpus: string, suspects: Suspect[]): Promise<SnapshotIssue[]> {
  const wanted = new Set(suspects.map((s) => s.first));
  const firsts = new Map<number, { key: string; at: RecordPosition }>();
  const reader = new SnapshotReader({
    corpus,
    maxErrors: Number.MAX_SAFE_INTEGER,
    onRecord: (record, at, ordinal) => {
      if (wanted.has(ordinal)) firsts.set(ordinal, { key: record.key, at });
    },
  });
  await readInto(source, reader, () => firsts.size === wanted.size);
  const issues: SnapshotIssue[] = [];
  const byFirst = new Map<number, Suspect[]>();
  for (const s of suspects) byFirst.set(s.first, [...(byFirst.get(s.first) ?? []), s]);
  for (const [firstOrdinal, group] of byFirst) {
    const first = firsts.get(firstOrdinal);
    if (!first) continue; // the file changed under us; the staging pass will notice
    const seen = new Map<string, RecordPosition>([[first.key, first.at]]);
    for (const s of group) {
      const earlier = seen.get(s.key);
      if (earlier === undefined) {
        seen.set(s.key, s.at);
        continue;
      }
      issues.push({
        line: s.at.line,
        ...(s.at.index === undefined ? {} : { index: s.at.index }),
        field: 'key',
        message: `duplicate key "${s.key}": already on ${earlier.index === undefined ? `line ${earlier.line}` : `line ${earlier.line} (index ${earlier.index})`}`,
      });
    }
  }
  return issues;
}
