import { InvalidArgumentError } from 'commander';

/**
 * Option value parsers handed to commander, so a bad value is refused by the
 * command-line library the way every other usage error is (one line naming
 * the option, exit 2) rather than by hand in each action.
 */

/** A whole number from min to max (inclusive), written in plain digits. */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`It must be a whole number from ${min} to ${max}.`);
    return n;
  };
}
