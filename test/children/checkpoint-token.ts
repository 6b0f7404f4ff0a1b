import { createHash } from 'node:crypto';

/** A watermark that proves it was written whole: the counter and a hash of it. */
export function token(n: number): string {
  return `${n}-${createHash('sha256').update(String(n)).digest('hex').slice(0, 16)}`;
}

/** The counter of a {@link token}, or `undefined` when the hash does not match. */
export function counterOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number.parseInt(value, 10);
  return Number.isInteger(n) && token(n) === value ? n : undefined;
}
