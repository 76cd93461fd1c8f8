import { channel } from 'node:diagnostics_channel';
import { PHASES, type Phase } from './catalog.js';

/**
 * Named moments of a phase: before its side effect, in the middle of it
 * (for execute: the change applied, the transaction still open), and after
 * it but before the job completes. Each is published on the diagnostics
 * channel `cutter:phase-moment` for an in-process observer; nothing in cutter
 * subscribes and nothing here reads the environment or the configuration.
 * The chaos suite's preloaded module (test/support/fault-preload.ts) is such
 * an observer: it parks its worker at one moment, so a test can kill it there.
 */
export const PHASE_MOMENT_CHANNEL = 'cutter:phase-moment';

export const MOMENTS = ['before', 'middle', 'after'] as const;
export type PhaseMoment = `${Phase}.${(typeof MOMENTS)[number]}`;
export const PHASE_MOMENTS: readonly PhaseMoment[] = PHASES.flatMap((p) => MOMENTS.map((m) => `${p}.${m}` as const));

/** What an observer receives; it may set hold, and the phase then waits for it. */
export interface PhaseMomentMessage {
  moment: PhaseMoment;
  runId: string;
  hold?: Promise<void>;
}

const moments = channel(PHASE_MOMENT_CHANNEL);

/** Announces that a phase reached a moment; without an observer this costs one check. */
export async function reachMoment(moment: PhaseMoment, runId: string): Promise<void> {
  if (!moments.hasSubscribers) return;
  const message: PhaseMomentMessage = { moment, runId };
  moments.publish(message);
  if (message.hold) await message.hold;
}
