/**
 * Who is who for the no-self-approval rule (DESIGN §3). A run is enqueued by
 * a database login, which Postgres records (run.enqueued_by), and under an
 * operator label (CUTTER_OPERATOR); a sovereign key belongs to the
 * identities SOVEREIGN_KEYS gives it (its name, and what identities.json
 * maps it to). Both sides are compared normalised, so another spelling of
 * the same name (OPS, " ops ", a full-width Ｏ) is the same person.
 */

/** An identity as the rule compares it: Unicode NFKC, lower-cased, trimmed. */
export function normaliseIdentity(text: string): string {
  return text.normalize('NFKC').toLowerCase().trim();
}

/** The identities of a key named `name`, mapped to `mapped` (identities.json): normalised, each once. */
export function keyIdentities(name: string, mapped: readonly string[] = []): string[] {
  // The name always counts: a mapping may add identities, never take the name's away.
  return [...new Set([name, ...mapped].map(normaliseIdentity))].filter((i) => i !== '');
}

/** Who enqueued a run, each way the run records it. */
export interface RunEnqueuer {
  /** The operator label (CUTTER_OPERATOR when it was enqueued): chosen by the operator. */
  operator: string;
  /** The database login that inserted the run row, recorded by Postgres. */
  enqueuedBy: string;
}

/** The identities of whoever enqueued the run: the login and the label, normalised. */
export function enqueuerIdentities(run: RunEnqueuer): string[] {
  return [...new Set([run.enqueuedBy, run.operator].map(normaliseIdentity))].filter((i) => i !== '');
}

/** The identity a key shares with whoever enqueued the run, or null; a key that shares one never approves that run. */
export function sharedIdentity(key: { identities: readonly string[] }, run: RunEnqueuer): string | null {
  const enqueuer = new Set(enqueuerIdentities(run));
  return key.identities.find((i) => enqueuer.has(i)) ?? null;
}
