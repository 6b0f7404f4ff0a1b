/**
 * Option validation, in one place and one style, for the wire layer, the sources and the adapters:
 * every error names the option (its path, such as `retry.factor` or `folders[2].id`) and the value
 * it got — `retry.factor must be a finite number ≥ 1 (got 0)` — as a `TypeError` for a value of the
 * wrong type and a `RangeError` for one out of range. Pure and dependency-free, so any layer may
 * use it (an adapter bundle that carries a copy changes nothing). Internal: not exported.
 *
 * @packageDocumentation
 */

/** A short, credential-free description of a bad value for an error message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length}`;
  if (typeof value === 'function') return 'a function';
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
}

/**
 * What kind of value a secret option got — `a string`, `an empty string`, `a number`, `an object`,
 * `an array of 2` — never the value itself: for passwords, tokens, TLS keys and passphrases, and
 * URLs (which may carry `user:password`), where {@link describeValue} would echo it.
 */
export function describeKind(value: unknown): string {
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string';
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return describeValue(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** `name must be <requirement> (got <value>)`. */
function message(name: string, requirement: string, value: unknown): string {
  return `${name} must be ${requirement} (got ${describeValue(value)})`;
}

/**
 * A string that is neither empty nor only XML whitespace, or a TypeError/RangeError naming
 * `name`. Blank values are refused because the parser refuses them from a server (an empty id
 * or watermark is `EwsProtocolError`): what we write, we must be able to read back.
 */
export function requireString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(message(name, 'a string', value));
  if (value.length === 0) throw new RangeError(`${name} must not be empty`);
  if (/^[ \t\n\r]+$/.test(value)) throw new RangeError(`${name} must not be blank`);
  return value;
}

/** An integer in `min`–`max`, or a RangeError naming `name` (`timeoutMinutes must be 1–1440 (got 0)`). */
export function requireIntInRange(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(message(name, `${min}–${max}`, value));
  }
  return value;
}

/** `value ?? fallback`, which must be an integer in `min`–`max` (see {@link requireIntInRange}). */
export function intInRange(value: unknown, name: string, fallback: number, min: number, max: number): number {
  return requireIntInRange(value ?? fallback, name, min, max);
}

/** `value ?? fallback`, which must be one of `allowed`, or a RangeError naming `name` (`ackMode must be "auto" or "manual" (got "later")`). */
export function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[], fallback: T): T {
  const v = value ?? fallback;
  if (!(allowed as readonly unknown[]).includes(v)) {
    const listed = allowed.map((a) => JSON.stringify(a));
    throw new RangeError(message(name, listed.length === 2 ? `${listed[0]} or ${listed[1]}` : `one of ${listed.join(', ')}`, v));
  }
  return v as T;
}

/**
 * A string that is not empty, or a TypeError naming `name` (`checkpointKey must be a non-empty
 * string (got "")`). Unlike {@link requireString}, a blank string passes: for values that never
 * travel in XML (keys, paths, host names).
 */
export function nonEmptyString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(message(name, 'a non-empty string', value));
  return value;
}

/** A string that is not empty, or nothing; a TypeError naming `name` otherwise. */
export function optionalNonEmptyString(value: unknown, name: string): string | undefined {
  return value === undefined ? undefined : nonEmptyString(value, name);
}

/** A plain object, or a TypeError naming `name`. */
export function requireObject(value: unknown, name: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(message(name, 'an object', value));
  return value as Readonly<Record<string, unknown>>;
}

/** The longest delay Node's timers accept (2^31 − 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `value ?? fallback`, which must be a positive finite number of milliseconds (or `Infinity` with
 * `allowInfinity`), or a RangeError naming `name`. A finite value above {@link MAX_TIMER_MS} comes
 * back as `MAX_TIMER_MS`: every option this checks ends up in a timer, which would otherwise fire
 * at once (a 30-day timeout that expires every request after 1 ms).
 */
export function positiveMs(value: unknown, name: string, fallback: number, options: { readonly allowInfinity?: boolean } = {}): number {
  const ms = value ?? fallback;
  const ok = typeof ms === 'number' && ms > 0 && (Number.isFinite(ms) || (options.allowInfinity === true && ms === Infinity));
  if (!ok) throw new RangeError(message(name, `a positive number of milliseconds${options.allowInfinity ? ' or Infinity' : ''}`, ms));
  return ms === Infinity ? ms : Math.min(ms as number, MAX_TIMER_MS);
}

/**
 * `value ?? fallback`, which must be a finite number of milliseconds ≥ 0, or a RangeError naming
 * `name`; capped at {@link MAX_TIMER_MS} like {@link positiveMs}.
 */
export function nonNegativeMs(value: unknown, name: string, fallback: number): number {
  const ms = value ?? fallback;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new RangeError(message(name, 'a finite number of milliseconds ≥ 0', ms));
  return Math.min(ms, MAX_TIMER_MS);
}

/** A boolean, `fallback` when absent, or a TypeError naming `name`. */
export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  const b = value ?? fallback;
  if (typeof b !== 'boolean') throw new TypeError(message(name, 'a boolean', b));
  return b;
}

/** A function or nothing, or a TypeError naming `name`. */
export function optionalFunction<T>(value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(message(name, 'a function', value));
  return value;
}

/** An AbortSignal or nothing, or a TypeError naming `name`. */
export function optionalAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) throw new TypeError(message(name, 'an AbortSignal', value));
  return value;
}
