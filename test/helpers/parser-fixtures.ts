/**
 * The parser's wire fixtures (test/fixtures/parser/*.xml, written for this project and modelled on
 * real Exchange traffic) and small helpers to feed them through the parser in pieces.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EnvelopeParser, type EnvelopeParserOptions } from '../../lib/ews/parser.js';
import type { EwsEnvelope } from '../../lib/ews/messages.js';

const dir = fileURLToPath(new URL('../fixtures/parser/', import.meta.url));

/** Every fixture file name. */
export const FIXTURE_NAMES: readonly string[] = readdirSync(dir)
  .filter((f) => f.endsWith('.xml'))
  .sort();

/** The raw bytes of one fixture. */
export function fixture(name: string): Buffer {
  return readFileSync(dir + name);
}

/** Feeds `bytes` cut at the given offsets (ascending) and returns every envelope, then calls end(). */
export function parseInPieces(bytes: Uint8Array, cuts: readonly number[], options?: EnvelopeParserOptions): EwsEnvelope[] {
  const parser = new EnvelopeParser(options);
  const out: EwsEnvelope[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut < from) continue;
    out.push(...parser.write(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(...parser.end());
  return out;
}

/** Feeds `bytes` one byte at a time. */
export function parseBytewise(bytes: Uint8Array, options?: EnvelopeParserOptions): EwsEnvelope[] {
  const cuts: number[] = [];
  for (let i = 1; i < bytes.length; i++) cuts.push(i);
  return parseInPieces(bytes, cuts, options);
}

/** Feeds `bytes` whole. */
export function parseWhole(bytes: Uint8Array, options?: EnvelopeParserOptions): EwsEnvelope[] {
  return parseInPieces(bytes, [], options);
}

/** Runs `fn` and returns what it threw (fails the test if it did not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, but none was thrown');
}
