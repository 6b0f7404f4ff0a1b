import { describe, expect, it } from 'vitest';
import { describeKind, nonEmptyString, optionalNonEmptyString } from '../lib/validate.js';

describe('validate', () => {
  it('describeKind names the kind of a secret, never its value', () => {
    const secret = 'hunter2-passphrase';
    expect(describeKind(secret)).toBe('a string');
    expect(describeKind('')).toBe('an empty string');
    expect(describeKind(12345678)).toBe('a number');
    expect(describeKind(true)).toBe('a boolean');
    expect(describeKind({ key: secret })).toBe('an object');
    expect(describeKind([secret, 1])).toBe('an array of 2');
    expect(describeKind(() => secret)).toBe('a function');
    expect(describeKind(null)).toBe('null');
    expect(describeKind(undefined)).toBe('undefined');
  });

  it('nonEmptyString refuses the empty string and non-strings, naming what it got; a blank string passes', () => {
    expect(nonEmptyString(' ', 'key')).toBe(' ');
    expect(() => nonEmptyString('', 'key')).toThrow(new TypeError('key must be a non-empty string (got "")'));
    expect(() => nonEmptyString(5, 'key')).toThrow(new TypeError('key must be a non-empty string (got 5)'));
    expect(optionalNonEmptyString(undefined, 'key')).toBeUndefined();
    expect(() => optionalNonEmptyString(null, 'key')).toThrow(new TypeError('key must be a non-empty string (got null)'));
  });
});
