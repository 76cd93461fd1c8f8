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

/** The ops of a plan item. */
export const PLAN_OPS = ['create', 'revise', 'transition', 'revise+transition'] as const;
export type PlanOp = (typeof PLAN_OPS)[number];

/** True when s is one of the three unit states. */
export function isUnitState(s: unknown): s is UnitState {
  return s === 'draft' || s === 'enacted' || s === 'retired';
}
