-- run.enqueued_by is the database login that inserted the run (DESIGN §3):
-- the no-self-approval rule compares sovereign keys with it, so the client
-- never chooses it. On INSERT it is session_user (the login, not a role
-- taken with SET ROLE), whatever the statement said; on UPDATE it keeps its
-- value, so no later writer can launder a run into someone else's.
CREATE OR REPLACE FUNCTION cutter_governance.record_enqueued_by()
RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.enqueued_by := session_user;
  ELSE
    NEW.enqueued_by := OLD.enqueued_by;
  END IF;
  RETURN NEW;
END
$$;
