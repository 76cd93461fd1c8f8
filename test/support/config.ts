import { parseConfig } from '../../shared/config.js';
import { ConfigError } from '../../shared/errors.js';

/** The ConfigError an environment is refused with (the test fails if it is accepted). */
export function configRefusal(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
