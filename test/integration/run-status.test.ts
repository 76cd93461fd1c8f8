import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inFlight, RUN_STATUSES } from '../../shared/runs/status.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('run_status');
});
afterAll(async () => {
  await db.drop();
});

describe('the in-flight run statuses', () => {
  it('are the same in TypeScript and in PostgreSQL (cutter_governance.run_in_flight)', async () => {
    const { rows } = await db.pool.query<{ status: string; in_flight: boolean }>(
      'SELECT s AS status, cutter_governance.run_in_flight(s) AS in_flight FROM unnest($1::text[]) s',
      [[...RUN_STATUSES]],
    );
    expect(rows.map((r) => [r.status, r.in_flight])).toEqual(RUN_STATUSES.map((s) => [s, inFlight(s)]));
    expect(RUN_STATUSES.filter(inFlight)).toEqual(['queued', 'running', 'awaiting_approval']);
  });
});
