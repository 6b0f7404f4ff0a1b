/**
 * Argument checks shared by the builders. Internal: not exported from the package. Every error
 * names the option path, so a caller can find the bad value at once.
 *
 * @packageDocumentation
 */

/** A short, credential-free description of a bad value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
}

/**
 * A string that is neither empty nor only XML whitespace, or a TypeError/RangeError naming
 * `field`. Blank values are refused because the parser refuses them from a server (an empty id
 * or watermark is `EwsProtocolError`): what we write, we must be able to read back.
 */
export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string (got ${describe(value)})`);
  if (value.length === 0) throw new RangeError(`${field} must not be empty`);
  if (/^[ \t\n\r]+$/.test(value)) throw new RangeError(`${field} must not be blank`);
  return value;
}

/** An integer in `min`–`max`, or a RangeError naming `field` (`timeoutMinutes must be 1–1440 (got 0)`). */
export function requireIntInRange(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${field} must be ${min}–${max} (got ${describe(value)})`);
  }
  return value;
}

/** A plain object, or a TypeError naming `field`. */
export function requireObject(value: unknown, field: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${field} must be an object (got ${describe(value)})`);
  }
  return value as Readonly<Record<string, unknown>>;
}

