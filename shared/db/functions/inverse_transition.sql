-- What undoes a transition (docs/undo.md): a->b is undone by b->a, a creation
-- (new->s) by retiring the unit (s->retired: a unit is never deleted); a
-- revision (NULL transition, or 'revise') by another revision. The
-- TypeScript rule is inverseTransition (shared/units/lifecycle.ts); a test
-- holds them equal. No SET clause, so callers' queries inline it.
CREATE OR REPLACE FUNCTION cutter_governance.inverse_transition(p_transition text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE WHEN p_transition IS NULL OR p_transition = 'revise' THEN p_transition
              WHEN split_part(p_transition, '->', 1) = 'new' THEN split_part(p_transition, '->', 2) || '->retired'
              ELSE split_part(p_transition, '->', 2) || '->' || split_part(p_transition, '->', 1) END
$$;
