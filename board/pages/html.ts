/**
 * Server-rendered HTML without a template engine: every value goes through
 * esc() (the `html` tag does it for interpolations), so a target name or an
 * error message can never become markup.
 */

/** Escapes text for HTML content and attribute values. */
export function esc(value: unknown): string {
  const text = typeof value === 'string' ? value : value === null || value === undefined ? '' : JSON.stringify(value);
  return text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Markup already escaped by `html`; anything else interpolated is escaped. */
export class Safe {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Tagged template: interpolations are escaped unless Safe (or arrays of Safe). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Safe {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Safe(out);
}

function render(v: unknown): string {
  if (v instanceof Safe) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return esc(v);
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 24px}header a{color:#fff;margin-right:16px;text-decoration:none}
main{padding:16px 24px;max-width:1100px}
table{border-collapse:collapse;background:#fff;margin:8px 0 20px;width:100%}
th,td{border:1px solid #d9dde3;padding:5px 8px;text-align:left;vertical-align:top}th{background:#eef0f3}
code{font:12px ui-monospace,monospace}.PASS,.succeeded,.completed{color:#11713a;font-weight:600}
.FAIL,.failed,.expired,.rejected{color:#b3261e;font-weight:600}.cancelled,.abandoned,.skipped{color:#57606a;font-weight:600}.awaiting_approval,.active,.running{color:#9a6700;font-weight:600}
pre{background:#fff;border:1px solid #d9dde3;padding:12px;overflow:auto;white-space:pre-wrap}
.error{white-space:pre-line}#report{background:#fff;border:1px solid #d9dde3;padding:4px 16px}
`;

/** A whole page around body. */
export function page(title: string, body: Safe): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · cutter</title><style>${new Safe(STYLE)}</style></head>
<body><header><a href="/runs">Runs</a><a href="/admin/queues">Queues (Bull Board)</a></header>
<main>${body}</main></body></html>`.text;
}

/** A status word with its colour class. */
export function badge(value: string | null): Safe {
  return value ? html`<span class="${value}">${value}</span>` : html`<span>—</span>`;
}

/** "3 min ago" style age of a timestamp. */
export function age(from: Date, now = new Date()): string {
  const s = Math.max(0, Math.round((now.getTime() - from.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** Milliseconds as "1.23 s". */
export function seconds(ms: number | null): string {
  return ms === null ? '…' : `${(ms / 1000).toFixed(2)} s`;
}
