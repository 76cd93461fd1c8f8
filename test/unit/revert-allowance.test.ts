import { describe, expect, it } from 'vitest';
import { allowanceAtDepth } from '../../shared/plan/run-allowance.js';
import { inverseTransition, TRANSITION_KINDS } from '../../shared/units/lifecycle.js';

describe("a revert's allowance (C6: the target's allowed_transitions inverted)", () => {
  it('undoes each transition: a->b by b->a, a creation by retiring the unit, a revision by a revision', () => {
    expect(Object.fromEntries(TRANSITION_KINDS.map((k) => [k, inverseTransition(k)]))).toEqual({
      'new->draft': 'draft->retired',
      'new->enacted': 'enacted->retired',
      'draft->enacted': 'enacted->draft',
      'draft->retired': 'retired->draft',
      'enacted->retired': 'retired->enacted',
      revise: 'revise',
    });
  });

  it('inverts the demo target once for a revert and twice for the revert of a revert, keeping max_units', () => {
    const target = { maxUnits: 500, allowedTransitions: ['new->draft', 'draft->enacted', 'revise'] };
    expect(allowanceAtDepth(target, 0)).toEqual({ maxUnits: 500, transitions: ['draft->enacted', 'new->draft', 'revise'] });
    expect(allowanceAtDepth(target, 1)).toEqual({ maxUnits: 500, transitions: ['draft->retired', 'enacted->draft', 'revise'] });
    // A created unit the revert retired comes back out of retired; an enacted one is enacted again.
    expect(allowanceAtDepth(target, 2)).toEqual({ maxUnits: 500, transitions: ['draft->enacted', 'retired->draft', 'revise'] });
  });
});
