/**
 * The one way BackJob checks what it is given (options of every entry,
 * arguments, request bodies): each rule once, each failure a `BackjobError`
 * (`BACKJOB_ERR_INVALID`) that says what was expected and what came, so a
 * typo fails at start-up or at the call, not at the first job.
 */
import { BackjobError } from './errors.js';

/** `` `-1` (number)``: the value and its type, as validation messages show them. */
export function describeValue(value: unknown): string {
  let shown: string;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'function' ? 'a function' : String(JSON.stringify(value) ?? value);
  } catch {
    shown = String(value);
  }
  if (shown.length > 60) shown = `${shown.slice(0, 57)}...`;
  return `\`${shown}\` (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}

/** A `BACKJOB_ERR_INVALID` with a message of the caller's own. */
export function invalid(message: string): BackjobError {
  return new BackjobError('BACKJOB_ERR_INVALID', message);
}

/** The error for an option (or argument) that is not what was expected. */
export function invalidOption(name: string, expected: string, value: unknown): BackjobError {
  return invalid(`Expected \`${name}\` to be ${expected}, got ${describeValue(value)}`);
}

/** An object literal's kind of value: not null, not an array. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks an option that must be a finite number above 0 (`unit` names what it counts, for the message). */
export function positiveOption(name: string, value: unknown, unit = 'number'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidOption(name, `a positive ${unit}`, value);
  }
  return value;
}

/**
 * Checks the options object of an entry (`createBackJob`, `attach`, `redis`, …):
 * an object (absent is `{}`), with no option the entry does not know, so a typo
 * fails at the call instead of being ignored.
 */
export function checkOptionsObject<T extends object>(value: T | undefined, known: Iterable<string>, name = 'options'): T {
  if (value === undefined) return {} as T;
  if (!isPlainObject(value)) throw invalidOption(name, 'an object', value);
  const names = new Set(known);
  for (const key of Object.keys(value)) {
    if (!names.has(key)) throw invalid(`Unknown option \`${key}\``);
  }
  return value;
}

/** Checks an option that must be a boolean. */
export function booleanOption(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}

/** Checks an option that must be a safe integer of at least `min` (`expected` words it for the message). */
export function integerOption(name: string, value: unknown, min: number, expected = min > 0 ? 'a positive integer' : 'a non-negative integer'): number {
  if (!(typeof value === 'number' && Number.isSafeInteger(value) && value >= min)) throw invalidOption(name, expected, value);
  return value;
}

/** Checks an option that must be a finite number of at least 0 (`unit` names what it counts). */
export function nonNegativeOption(name: string, value: unknown, unit = 'number'): number {
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) throw invalidOption(name, `a non-negative ${unit}`, value);
  return value;
}

/** Checks an option that must be an array of strings each passing `test` (`expected` words it for the message). */
export function stringArrayOption(name: string, value: unknown, expected: string, test: (item: string) => boolean = () => true): string[] {
  if (!(Array.isArray(value) && value.every((item) => typeof item === 'string' && test(item)))) throw invalidOption(name, expected, value);
  return value as string[];
}
