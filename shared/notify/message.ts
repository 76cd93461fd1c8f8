import type { NotificationEvent } from './store.js';

/** The JSON body of a webhook (docs/notifications.md): Standard Webhooks' type, timestamp and data. */
export interface WebhookBody {
  type: string;
  timestamp: string;
  data: {
    run_id: string;
    target: string;
    mode: string;
    status: string;
    phase: string | null;
    plan_sha256: string | null;
    /** The audit chain's head when the event happened, its own row: `SEQ:HASH` for `cutter audit verify --head`. */
    audit_head: string | null;
    url: string;
    /** One line a chat tool's incoming webhook can show as it is. */
    text: string;
    error_code?: string;
    reason?: string;
    approval?: { gate: string | null; key_name: string | null };
    sign?: { plan_sha256: string | null; gates: string[]; command: string; plan_url: string };
  };
}

/** The run page, and its plan section, on the board people open. */
export function runPageUrl(boardUrl: string, runId: string, anchor = ''): string {
  return `${boardUrl}/runs/${encodeURIComponent(runId)}${anchor}`;
}

/** Builds the body of one event; the same event gives the same body on every attempt. */
export function webhookBody(event: NotificationEvent, boardUrl: string): WebhookBody {
  const d = event.data;
  const url = runPageUrl(boardUrl, event.run_id);
  const run = `cutter run ${event.run_id} (${d.mode}, target ${d.target})`;
  const base = { run_id: event.run_id, target: d.target, mode: d.mode, status: d.status, phase: d.phase, plan_sha256: d.plan_sha256, audit_head: d.audit_head, url };
  const body = (text: string, extra: Partial<WebhookBody['data']> = {}): WebhookBody => ({
    type: event.type,
    timestamp: event.at.toISOString(),
    // One line whatever a reason holds: chat tools show the text as it is.
    data: { ...base, text: text.replace(/\s+/g, ' '), ...extra },
  });
  switch (event.type) {
    case 'run.awaiting_approval': {
      const planUrl = runPageUrl(boardUrl, event.run_id, '#plan');
      const command = `cutter approval sign --gate SG_1 --run ${event.run_id} --key KEY.pem`;
      return body(
        `${run} awaits approval: sign plan_sha256 ${d.plan_sha256 ?? '?'} for SG_1 and EXEC (${command}, then --gate EXEC); review the plan at ${planUrl}`,
        { sign: { plan_sha256: d.plan_sha256, gates: ['SG_1', 'EXEC'], command, plan_url: planUrl } },
      );
    }
    case 'approval.accepted':
      return body(`${run}: ${d.gate ?? 'SG_1'} approval by ${d.key_name ?? 'a sovereign key'} accepted; ${url}`, {
        approval: { gate: d.gate, key_name: d.key_name },
      });
    case 'run.succeeded':
      return body(`${run} succeeded: verdict PASS; ${url}`);
    case 'run.failed':
      return body(`${run} failed${d.phase ? ` in ${d.phase}` : ''}: ${d.error_code ?? 'no error code'}; ${url}`, { error_code: d.error_code ?? 'INTERNAL' });
    case 'run.expired':
      return body(`${run} expired: no approval released it within its window; ${url}`, { error_code: d.error_code ?? 'APPROVAL_EXPIRED' });
    case 'run.cancelled':
    case 'run.rejected': {
      const what = event.type === 'run.cancelled' ? 'cancelled' : 'rejected';
      return body(`${run} ${what}${d.reason ? `: ${d.reason}` : ''}; ${url}`, d.reason ? { reason: d.reason } : {});
    }
    default:
      return body(`${run}: ${event.type}; ${url}`);
  }
}
