import { CutterError } from '../errors.js';

/** One problem found in a snapshot, located by line (and array index for a JSON array). */
export interface SnapshotIssue {
  /** 1-based line of the file where the record (or the problem) starts. */
  line: number;
  /** 0-based position in the JSON array; absent for NDJSON. */
  index?: number;
  /** The record field concerned, or null when the problem is not in one field. */
  field: string | null;
  message: string;
}

/** Where a record sits in the file. */
export interface RecordPosition {
  line: number;
  /** The array index for a JSON array, undefined for NDJSON. */
  index: number | undefined;
}

/** "line 12" or "line 3 (index 1)". */
export function describePosition(p: RecordPosition): string {
  return p.index === undefined ? `line ${p.line}` : `line ${p.line} (index ${p.index})`;
}

/** One issue as one line: `line 12: field "state": unknown state "x"`. */
export function formatIssue(issue: SnapshotIssue): string {
  const where = describePosition({ line: issue.line, index: issue.index });
  return issue.field === null ? `${where}: ${issue.message}` : `${where}: field "${issue.field}": ${issue.message}`;
}

/** C5 failed: the snapshot is not valid. Nothing was staged. */
export class SnapshotInvalidError extends CutterError {
  constructor(
    readonly path: string,
    readonly issues: SnapshotIssue[],
    /** True when reading stopped at the issue limit, so there may be more. */
    readonly stoppedEarly: boolean,
  ) {
    const head = `snapshot ${path} is invalid (${issues.length}${stoppedEarly ? '+' : ''} issue${issues.length === 1 ? '' : 's'}; nothing was staged)`;
    const tail = stoppedEarly ? [`  … stopped after ${issues.length} issues; fix these and run again`] : [];
    super('SNAPSHOT_INVALID', [head + ':', ...issues.map((i) => `  ${formatIssue(i)}`), ...tail].join('\n'), { kind: 'bad_input' });
    this.name = 'SnapshotInvalidError';
  }
}
