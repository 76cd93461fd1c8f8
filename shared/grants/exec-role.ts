import { isPgError } from '../db/errors.js';
import { ident, type PoolClient } from '../db/pool.js';
import { CutterError } from '../errors.js';

/**
 * How execute drops to the exec role: the application's login stays the
 * connection's user, and for one stretch of an open transaction it becomes
 * the exec role, which may write nothing but through apply_plan.
 *
 * SET LOCAL ends with the transaction whatever happens (COMMIT, ROLLBACK, a
 * dropped connection), so the pooled connection can never come back to the
 * pool still wearing the exec role.
 */

/**
 * Runs fn as `execRole` inside the caller's transaction: the client must be
 * inside BEGIN (it refuses otherwise). SET LOCAL ROLE, fn, then RESET ROLE;
 * if fn throws, the caller's ROLLBACK ends the role along with everything else.
 * Not for nesting: RESET ROLE returns to the login, not to an outer SET ROLE.
 */
export async function withExecRole<T>(client: PoolClient, execRole: string, fn: () => Promise<T>): Promise<T> {
  // Outside a transaction SET LOCAL is only a warning: fn would run as the login.
  const status = client.getTransactionStatus();
  if (status !== 'T') {
    const why = status === 'E' ? 'the transaction has already failed' : 'no transaction is open';
    throw new CutterError('EXEC_ROLE_NO_TRANSACTION', `cannot switch to the exec role "${execRole}": ${why}; call withExecRole inside BEGIN`);
  }
  try {
    await client.query(`SET LOCAL ROLE ${ident(execRole)}`);
  } catch (err) {
    if (isPgError(err, '22023') || isPgError(err, '42704')) {
      throw new CutterError('EXEC_ROLE_MISSING', `the exec role "${execRole}" does not exist: run \`cutter db migrate\``, { cause: err });
    }
    if (isPgError(err, '42501')) {
      throw new CutterError(
        'EXEC_ROLE_DENIED',
        `this login may not SET ROLE "${execRole}": apply \`cutter grants package\` (it grants the role to the login)`,
        { cause: err },
      );
    }
    throw err;
  }
  // Trust but verify: everything fn does rests on this being the exec role.
  const who = await client.query<{ role: string }>('SELECT current_user::text AS role');
  if (who.rows[0]?.role !== execRole) {
    const actual = who.rows[0]?.role ?? 'unknown';
    throw new CutterError('EXEC_ROLE_NOT_SET', `SET LOCAL ROLE "${execRole}" did not take effect (current_user is ${actual})`);
  }
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    // In a failed transaction RESET is refused too; the rollback undoes SET LOCAL.
    await client.query('RESET ROLE').catch(() => undefined);
    throw err;
  }
  await client.query('RESET ROLE');
  return result;
}
