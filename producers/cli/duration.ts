import { CutterError } from '../../shared/errors.js';

/** "90s", "30m", "72h" → seconds; anything else is bad input. */
export function parseDurationSeconds(text: string, option: string): number {
  const match = /^(\d{1,6})(s|m|h)$/.exec(text.trim());
  if (!match) throw new CutterError('DURATION_INVALID', `${option} must look like 90s, 30m or 72h (got ${JSON.stringify(text)})`, { kind: 'bad_input' });
  const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as 's' | 'm' | 'h'];
  if (seconds < 1) throw new CutterError('DURATION_INVALID', `${option} must be at least 1s`, { kind: 'bad_input' });
  return seconds;
}
