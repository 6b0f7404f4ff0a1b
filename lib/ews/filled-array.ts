/**
 * Arrays for the parser's hot paths that keep one map for their whole life.
 *
 * @packageDocumentation
 */

/**
 * `length` empty strings, in an array that holds any value from the start. An array that starts
 * as `[]` has small-integer elements and changes map at its first string store, and again when it
 * outgrows its backing store: optimized code compiled while one parser's arrays had one map was
 * thrown away when another parser's (or a longer tag's) met it. Code that stores strings (or
 * `undefined`) within `length` never sees a new map. (Only for such values: the one literal here
 * learns the elements kind of what is stored into the arrays it made, so numbers would get a map
 * that depends on the calls before.)
 *
 * @internal
 */
export function stringSlots(length: number): string[] {
  const array: string[] = [];
  for (let i = 0; i < length; i++) array.push('');
  return array;
}
