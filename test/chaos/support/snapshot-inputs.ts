import { readFileSync } from 'node:fs';
import fc from 'fast-check';

/**
 * Hostile snapshot files for test/chaos/fuzz-snapshot.test.ts: the demo
 * snapshot in every accepted form with record-level and byte-level
 * mutations, records made up from nothing, and raw garbage. Mutations are
 * plain data, so fast-check prints a failing case readably and shrinks it.
 */

export const CORPUS = 'ICX-WORK';
/** DESIGN C5 "bodies within limits", as the product states it. */
export const MAX_BODY = 1_048_576;
const DEMO = readFileSync(new URL('../../../demo/icx-work.snapshot.ndjson', import.meta.url));

type Entries = [string, unknown][];
const demoRecords: Entries[] = DEMO.toString('utf8').trim().split('\n').map((l) => Object.entries(JSON.parse(l) as object));
const FIELDS = ['key', 'state', 'body'] as const;
const FORMS = ['ndjson', 'ndjson-crlf', 'ndjson-bom', 'ndjson-blank-lines', 'ndjson-no-final-nl', 'array', 'array-pretty'] as const;
type Form = (typeof FORMS)[number];

// Written by hand so a record may keep duplicate or prototype-named members ("__proto__").
const objectText = (e: Entries) => `{${e.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;

function serialise(records: Entries[], form: Form): Buffer {
  const objs = records.map(objectText);
  const text: Record<Form, () => string> = {
    ndjson: () => objs.map((o) => `${o}\n`).join(''),
    'ndjson-crlf': () => objs.map((o) => `${o}\r\n`).join(''),
    'ndjson-bom': () => `\ufeff${objs.map((o) => `${o}\n`).join('')}`,
    'ndjson-blank-lines': () => `\n  \n${objs.join('\n\n \t\n')}\n\n`,
    'ndjson-no-final-nl': () => objs.join('\n'),
    array: () => `[${objs.join(',')}]`,
    'array-pretty': () => `[\n  ${objs.join(',\n  ')}\n]\n`,
  };
  return Buffer.from(text[form](), 'utf8');
}

const tricky = fc.constantFrom(
  '', ' ', '\u0000', '\ud800', '\udfff', '\\N', '\\.', '\t\n\r\\', 'é', '🎉', '\u2028', '\ufeff', 'draft', 'Draft', 'enacted ',
  'ICX-WORK/new-1', 'ICX-WORK/has space', 'ICX-CONST/001', 'ICX-WORK', `ICX-WORK/${'a'.repeat(191)}`, `ICX-WORK/${'a'.repeat(192)}`, 'ICX-WORK/ＡＢ',
);
const anyValue = fc.oneof(tricky, fc.string({ unit: 'binary', maxLength: 30 }), fc.jsonValue({ maxDepth: 2 }));
const fieldName = fc.oneof(fc.constantFrom(...FIELDS, 'Key', 'body ', '__proto__', 'constructor', ''), fc.string({ maxLength: 6 }));

const recordMutation = fc.oneof(
  fc.record({ op: fc.constant('swap-fields' as const), at: fc.nat(), a: fc.constantFrom(...FIELDS), b: fc.constantFrom(...FIELDS) }),
  fc.record({ op: fc.constant('rename-field' as const), at: fc.nat(), field: fc.constantFrom(...FIELDS), to: fieldName }),
  fc.record({ op: fc.constant('add-field' as const), at: fc.nat(), field: fieldName, value: anyValue }),
  fc.record({ op: fc.constant('delete-field' as const), at: fc.nat(), field: fc.constantFrom(...FIELDS) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), field: fc.constantFrom(...FIELDS), value: anyValue }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant('move' as const), at: fc.nat(), to: fc.nat() }),
  fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
  // Around the 1 MiB body limit, in 1-, 2-, 3- and 4-byte characters.
  fc.record({ op: fc.constant('huge-body' as const), at: fc.nat(), char: fc.constantFrom('a', 'é', '中', '🎉'), delta: fc.integer({ min: -1, max: 1 }) }),
);
type RecordMutation = typeof recordMutation extends fc.Arbitrary<infer T> ? T : never;

const BAD_UTF8 = [[0xff], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80], [0xe2, 0x28, 0xa1], [0xf0, 0x9f, 0x8e], [0xf5, 0x80, 0x80, 0x80]];
const byteMutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), pos: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.constantFrom(...BAD_UTF8).map((b) => Uint8Array.from(b)) }),
  fc.record({ op: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.constantFrom(',', ']', '[', '{', '}', '"', '\\', '\n', '\r\n', ' ', '\t', '\u00a0', '\ufeff', 'null').map((s) => Uint8Array.from(Buffer.from(s))) }),
  fc.record({ op: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), pos: fc.nat() }),
  fc.record({ op: fc.constant('dup-line' as const), pos: fc.nat() }),
  fc.record({ op: fc.constant('swap-lines' as const), pos: fc.nat(), to: fc.nat() }),
);
type ByteMutation = typeof byteMutation extends fc.Arbitrary<infer T> ? T : never;

function applyRecordMutation(records: Entries[], m: RecordMutation): Entries[] {
  if (records.length === 0) return records;
  const out = records.map((e) => e.map(([k, v]) => [k, v] as [string, unknown]));
  const i = m.at % out.length;
  const rec = out[i] as Entries;
  const slot = (field: string) => rec.findIndex(([k]) => k === field);
  switch (m.op) {
    case 'swap-fields': {
      const [a, b] = [slot(m.a), slot(m.b)];
      if (a >= 0 && b >= 0) [rec[a], rec[b]] = [[m.a, rec[b]?.[1]], [m.b, rec[a]?.[1]]];
      break;
    }
    case 'rename-field':
      if (slot(m.field) >= 0) rec[slot(m.field)] = [m.to, rec[slot(m.field)]?.[1]];
      break;
    case 'add-field':
      rec.push([m.field, m.value]);
      break;
    case 'delete-field':
      if (slot(m.field) >= 0) rec.splice(slot(m.field), 1);
      break;
    case 'set':
      if (slot(m.field) >= 0) rec[slot(m.field)] = [m.field, m.value];
      break;
    case 'duplicate':
      out.splice(m.to % (out.length + 1), 0, rec);
      break;
    case 'move':
      out.splice(i, 1);
      out.splice(m.to % (out.length + 1), 0, rec);
      break;
    case 'drop':
      out.splice(i, 1);
      break;
    case 'huge-body': {
      const width = Buffer.byteLength(m.char, 'utf8');
      if (slot('body') >= 0) rec[slot('body')] = ['body', m.char.repeat(Math.floor(MAX_BODY / width) + m.delta)];
      break;
    }
  }
  return out;
}

function applyByteMutation(bytes: Buffer, m: ByteMutation): Buffer {
  const pos = m.pos % (bytes.length + 1);
  switch (m.op) {
    case 'flip': {
      if (bytes.length === 0) return bytes;
      const out = Buffer.from(bytes);
      const at = m.pos % bytes.length;
      out[at] = (out[at] as number) ^ m.mask;
      return out;
    }
    case 'insert':
      return Buffer.concat([bytes.subarray(0, pos), m.bytes, bytes.subarray(pos)]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, pos), bytes.subarray(pos + m.len)]);
    case 'truncate':
      return bytes.subarray(0, pos);
    case 'dup-line':
    case 'swap-lines': {
      const lines = bytes.toString('latin1').split('\n'); // latin1 keeps every byte as it is
      const a = m.pos % lines.length;
      const b = 'to' in m ? m.to % lines.length : a;
      if (m.op === 'dup-line') lines.splice(a, 0, lines[a] ?? '');
      else [lines[a], lines[b]] = [lines[b] ?? '', lines[a] ?? ''];
      return Buffer.from(lines.join('\n'), 'latin1');
    }
  }
}

/** The demo snapshot in some form, with record-level then byte-level mutations. */
export const mutatedDemo = fc
  .record({
    form: fc.constantFrom(...FORMS),
    records: fc.array(recordMutation, { maxLength: 3 }),
    // Often none: a good share of the files stays valid, so staging is exercised too.
    bytes: fc.oneof(fc.constant([] as ByteMutation[]), fc.array(byteMutation, { minLength: 1, maxLength: 3 })),
  })
  .map((c) => ({ case: c, bytes: c.bytes.reduce(applyByteMutation, serialise(c.records.reduce(applyRecordMutation, demoRecords), c.form)) }));

/** Records made up from nothing: arbitrary Unicode bodies test the COPY escaping. */
export const generated = fc
  .record({
    form: fc.constantFrom(...FORMS),
    records: fc.array(
      fc.record({
        key: fc.string({ unit: fc.constantFrom(...'abcXYZ019._:/-'), minLength: 1, maxLength: 12 }).map((s) => `${CORPUS}/${s}`),
        state: fc.oneof({ weight: 30, arbitrary: fc.constantFrom('draft', 'enacted', 'retired') }, { weight: 1, arbitrary: fc.constant('gone') }),
        body: fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: fc.constantFrom('\\', '\t', '\n', '\r', '.', 'N', '\u0085', '"'), maxLength: 20 })),
      }),
      { minLength: 0, maxLength: 20 },
    ),
  })
  .map((c) => ({ case: c, bytes: serialise(c.records.map((r) => Object.entries(r)), c.form) }));

/** Raw garbage, half of it starting like a snapshot so the parser gets past the first byte. */
export const randomBytes = fc
  .tuple(fc.constantFrom('', '{', '[', ' \n{"key":', '  \t{"key": ', '[{"key":"ICX-WORK/1","state":"draft","body":"'), fc.uint8Array({ maxLength: 600 }))
  .map(([head, tail]) => ({ case: { head }, bytes: Buffer.concat([Buffer.from(head), tail]) }));
