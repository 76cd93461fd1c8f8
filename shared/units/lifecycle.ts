/**
 * The lifecycle of an information unit (DESIGN §2), in one place: the target
 * registration, the snapshot validator and the planner all read it from here.
 */

export const UNIT_STATES = ['draft', 'enacted', 'retired'] as const;
export type UnitState = (typeof UNIT_STATES)[number];

/** State changes a cut may ever make; everything else is forbidden outright. */
export const STATE_TRANSITIONS = ['new->draft', 'new->enacted', 'draft->enacted', 'draft->retired', 'enacted->retired'] as const;
export type StateTransition = (typeof STATE_TRANSITIONS)[number];

/** What a target's allowed_transitions may list: the state changes plus `revise` (a new body version). */
export const TRANSITION_KINDS = [...STATE_TRANSITIONS, 'revise'] as const;
export type TransitionKind = (typeof TRANSITION_KINDS)[number];

/**
 * The state changes only a revert may make (`cutter revert`, docs/undo.md):
 * the inverses of draft->enacted, draft->retired and enacted->retired, each
 * only for a unit the reverted run moved the other way. The database refuses
 * them in any other run's plan (trigger cut_change_item_revert).
 */
export const REVERT_TRANSITIONS = ['enacted->draft', 'retired->draft', 'retired->enacted'] as const;

/** What an SG_1 allowance may list: every kind a plan can use, a revert's included. */
export const ALLOWANCE_KINDS = [...TRANSITION_KINDS, ...REVERT_TRANSITIONS] as const;
export type AllowanceKind = (typeof ALLOWANCE_KINDS)[number];

/** The ops of a plan item. */
export const PLAN_OPS = ['create', 'revise', 'transition', 'revise+transition'] as const;
export type PlanOp = (typeof PLAN_OPS)[number];

/** True when s is one of the three unit states. */
export function isUnitState(s: unknown): s is UnitState {
  return s === 'draft' || s === 'enacted' || s === 'retired';
}

/**
 * What undoes a transition kind: `a->b` is undone by `b->a`, a creation
 * (`new->s`) by retiring the unit (`s->retired`: history is append-only, so a
 * unit is never deleted), and `revise` by another revision. SQL has the same
 * rule as cutter_governance.inverse_transition (a test holds them equal).
 */
export function inverseTransition(kind: string): string {
  if (kind === 'revise') return kind;
  const [from, to] = kind.split('->');
  return from === 'new' ? `${to ?? ''}->retired` : `${to ?? ''}->${from ?? ''}`;
}
